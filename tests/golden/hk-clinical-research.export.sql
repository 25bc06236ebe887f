WITH source AS (
    SELECT * FROM data."patients__v1" WHERE "admission_date" >= CAST('2020-01-01' AS DATE)
), transformed AS (
    SELECT
        CASE WHEN "patient_id" IS NULL THEN NULL ELSE '' || left(sha256((SELECT pseudonym_opad FROM ds_keys) || unhex(sha256((SELECT pseudonym_ipad FROM ds_keys) || encode(CAST("patient_id" AS VARCHAR))))), 16) END AS "patient_id",
        "sex" AS "sex",
        CASE WHEN "dob" IS NULL THEN NULL ELSE CAST(CAST(floor(date_sub('year', CAST("dob" AS DATE), DATE '2026-01-01') / 10) * 10 AS INTEGER) AS VARCHAR) || '-' || CAST(CAST(floor(date_sub('year', CAST("dob" AS DATE), DATE '2026-01-01') / 10) * 10 AS INTEGER) + 9 AS VARCHAR) END AS "dob",
        CASE WHEN "phone" IS NULL THEN NULL WHEN length(CAST("phone" AS VARCHAR)) <= 2 THEN repeat('*', length(CAST("phone" AS VARCHAR))) ELSE left(CAST("phone" AS VARCHAR), 0) || repeat('*', length(CAST("phone" AS VARCHAR)) - 2) || right(CAST("phone" AS VARCHAR), 2) END AS "phone",
        CASE lower(trim(CAST("district" AS VARCHAR))) WHEN 'central and western' THEN 'Hong Kong Island' WHEN '中西區' THEN 'Hong Kong Island' WHEN '中西' THEN 'Hong Kong Island' WHEN 'wan chai' THEN 'Hong Kong Island' WHEN '灣仔區' THEN 'Hong Kong Island' WHEN '灣仔' THEN 'Hong Kong Island' WHEN 'eastern' THEN 'Hong Kong Island' WHEN '東區' THEN 'Hong Kong Island' WHEN '東' THEN 'Hong Kong Island' WHEN 'southern' THEN 'Hong Kong Island' WHEN '南區' THEN 'Hong Kong Island' WHEN '南' THEN 'Hong Kong Island' WHEN 'yau tsim mong' THEN 'Kowloon' WHEN '油尖旺區' THEN 'Kowloon' WHEN '油尖旺' THEN 'Kowloon' WHEN 'sham shui po' THEN 'Kowloon' WHEN '深水埗區' THEN 'Kowloon' WHEN '深水埗' THEN 'Kowloon' WHEN 'kowloon city' THEN 'Kowloon' WHEN '九龍城區' THEN 'Kowloon' WHEN '九龍城' THEN 'Kowloon' WHEN 'wong tai sin' THEN 'Kowloon' WHEN '黃大仙區' THEN 'Kowloon' WHEN '黃大仙' THEN 'Kowloon' WHEN 'kwun tong' THEN 'Kowloon' WHEN '觀塘區' THEN 'Kowloon' WHEN '觀塘' THEN 'Kowloon' WHEN 'kwai tsing' THEN 'New Territories' WHEN '葵青區' THEN 'New Territories' WHEN '葵青' THEN 'New Territories' WHEN 'tsuen wan' THEN 'New Territories' WHEN '荃灣區' THEN 'New Territories' WHEN '荃灣' THEN 'New Territories' WHEN 'tuen mun' THEN 'New Territories' WHEN '屯門區' THEN 'New Territories' WHEN '屯門' THEN 'New Territories' WHEN 'yuen long' THEN 'New Territories' WHEN '元朗區' THEN 'New Territories' WHEN '元朗' THEN 'New Territories' WHEN 'north' THEN 'New Territories' WHEN '北區' THEN 'New Territories' WHEN '北' THEN 'New Territories' WHEN 'tai po' THEN 'New Territories' WHEN '大埔區' THEN 'New Territories' WHEN '大埔' THEN 'New Territories' WHEN 'sha tin' THEN 'New Territories' WHEN '沙田區' THEN 'New Territories' WHEN '沙田' THEN 'New Territories' WHEN 'sai kung' THEN 'New Territories' WHEN '西貢區' THEN 'New Territories' WHEN '西貢' THEN 'New Territories' WHEN 'islands' THEN 'New Territories' WHEN '離島區' THEN 'New Territories' WHEN '離島' THEN 'New Territories' ELSE NULL END AS "district",
        CAST("admission_date" AS DATE) + CAST((CAST('0x' || left(sha256((SELECT shift_opad FROM ds_keys) || unhex(sha256((SELECT shift_ipad FROM ds_keys) || encode(CAST("patient_id" AS VARCHAR))))), 12) AS BIGINT) % 61) - 30 AS INTEGER) AS "admission_date",
        left(CAST("diagnosis" AS VARCHAR), 3) AS "diagnosis",
        round("hba1c", 0) AS "hba1c",
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(CAST("note" AS VARCHAR), '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[EMAIL]', 'g'), '[A-Za-z]{1,2}[0-9]{6} ?\(?[0-9Aa]\)?', '[HKID]', 'g'), '(?:\+?\b852[ -]?)?\b[2-79][0-9]{3}[ -]?[0-9]{4}\b', '[PHONE]', 'g'), '\b[A-Z]{2,}(?:-[A-Z]{2,})? [A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}\b', '[NAME]', 'g'), '(?:歐陽|司徒|上官|陳|李|張|黃|何|林|王|梁|吳|劉|蔡|楊|鄭|許|謝|郭|曾|羅|鄧|馮|周|朱|胡|葉|潘|蘇|盧|麥|余|伍|譚|徐|袁|彭|馬|莫|唐|區|關|方|鄺|簡|廖|江|石|姚|顏|孔|鍾|韋)[一-鿿]{1,2}', '[NAME]', 'g') AS "note"
    FROM source
), classed AS (
    SELECT *, count(*) OVER (PARTITION BY "dob", "sex", "district") AS __ds_class_size, count(DISTINCT "diagnosis") OVER (PARTITION BY "dob", "sex", "district") AS __ds_class_diversity
    FROM transformed
)
SELECT "patient_id", "sex", "dob", "phone", "district", "admission_date", "diagnosis", "hba1c", "note"
FROM classed
WHERE __ds_class_size >= 5 AND __ds_class_diversity >= 2
