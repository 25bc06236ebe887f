INSERT INTO ds_suppressed
SELECT DISTINCT m.__ds_subject
FROM ds_members AS m
SEMI JOIN (SELECT "dob", "sex", "district" FROM ds_classes WHERE NOT (__ds_class_size >= 5 AND __ds_class_diversity >= 2)) AS failing ON m."dob" IS NOT DISTINCT FROM failing."dob" AND m."sex" IS NOT DISTINCT FROM failing."sex" AND m."district" IS NOT DISTINCT FROM failing."district"
ANTI JOIN ds_suppressed AS gone ON m.__ds_subject = gone.__ds_subject
