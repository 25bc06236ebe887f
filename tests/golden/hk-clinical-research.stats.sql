SELECT (SELECT coalesce(sum(__ds_rows), 0) FROM ds_members) AS rows_in,
       (SELECT coalesce(sum(__ds_rows), 0) FROM ds_members SEMI JOIN ds_suppressed USING (__ds_subject))
         + (SELECT coalesce(sum(__ds_class_rows) FILTER (WHERE NOT (__ds_class_size >= 5 AND __ds_class_diversity >= 2)), 0) FROM ds_classes) AS suppressed,
       (SELECT min(__ds_class_size) FILTER (WHERE __ds_class_size >= 5 AND __ds_class_diversity >= 2) FROM ds_classes) AS k_out,
       (SELECT min(__ds_class_diversity) FILTER (WHERE __ds_class_size >= 5 AND __ds_class_diversity >= 2) FROM ds_classes) AS l_out,
       (SELECT count(*) FILTER (WHERE NOT (__ds_class_size >= 5 AND __ds_class_diversity >= 2)) FROM ds_classes) AS failing_classes,
       (SELECT count(DISTINCT __ds_subject) FROM ds_members) AS people_in,
       (SELECT count(*) FROM ds_suppressed) AS people_suppressed
