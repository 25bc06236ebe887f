SELECT coalesce(sum(__ds_class_size), 0) AS rows_in,
       coalesce(sum(__ds_class_size) FILTER (WHERE NOT (__ds_class_size >= 5 AND __ds_class_diversity >= 2)), 0) AS suppressed,
       min(__ds_class_size) FILTER (WHERE __ds_class_size >= 5 AND __ds_class_diversity >= 2) AS k_out,
       min(__ds_class_diversity) FILTER (WHERE __ds_class_size >= 5 AND __ds_class_diversity >= 2) AS l_out,
       count(*) FILTER (WHERE NOT (__ds_class_size >= 5 AND __ds_class_diversity >= 2)) AS failing_classes
FROM ds_classes
