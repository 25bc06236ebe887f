CREATE OR REPLACE TEMP TABLE ds_classes AS
SELECT "dob", "sex", "district", sum(__ds_rows) AS __ds_class_rows, count(DISTINCT __ds_subject) AS __ds_class_size, count(DISTINCT "diagnosis") AS __ds_class_diversity
FROM ds_members ANTI JOIN ds_suppressed USING (__ds_subject)
GROUP BY ALL
