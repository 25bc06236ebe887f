"""Patterns for identifiers of third parties in free text, in one declared regular-expression subset.

Free text names people the row does not: a relative, a neighbour, another
patient. These patterns find them by form. They are run by DuckDB (RE2) now
and must mean the same in other engines later (Java's ``java.util.regex`` for
Spark, Python's ``re`` in tests), so every pattern stays within
:data:`REGEX_SUBSET`: the constructs listed there, each with an example, and
nothing else. ``tests/test_textpatterns.py`` lints every pattern against it.

What is left out, and why:

* look-arounds and backreferences inside a pattern: RE2 has neither. A
  boundary is *captured* (``(^|[^0-9])``) and put back in the replacement
  with ``\\1``, which every engine supports in a replacement.
* ``\\b``, ``\\w``, ``\\d``, ``\\s``: Java and Python make them Unicode-aware
  (a CJK character is a word character there, not in RE2), so the classes
  are spelt out (``[A-Za-z]``, ``[0-9]``, a space).
* lazy and possessive quantifiers, atomic groups, ``.``: not needed, and
  their meaning differs at the edges (``.`` and a new line).

Patterns run on text whose full-width forms were folded to ASCII
(``Ａ１２３`` to ``A123``), so they list ASCII forms only.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from datashare.identifiers import CJK_CLASS, DATE_PATTERN

# The declared subset: (construct, a regex that finds it in a pattern, an example). The lint walks a pattern
# and accepts only these; anything else (\b, \d, (?=, \1, *?, .) is refused.
REGEX_SUBSET: tuple[tuple[str, str, str], ...] = (
    ("literal character (ASCII or written as itself)", r"[^\\\[\]()|?*+{}.^$]", "Flat"),
    ("escaped metacharacter", r"\\[.()\[\]{}|?*+^$/\\-]", r"\.  \(  \["),
    ("character class, ranges, negation", r"\[\^?(?:\\.|[^\\\]])+\]", "[0-9A-Za-z] [^0-9]"),
    ("group", r"\((?!\?)", "(^|[^0-9])"),
    ("non-capturing group", r"\(\?:", "(?:Mr|Mrs)"),
    ("scoped case-insensitive group", r"\(\?i:", "(?i:flat)"),
    ("group end", r"\)", ")"),
    ("alternation", r"\|", "a|b"),
    ("greedy quantifier", r"[?*+]|\{[0-9]+(?:,[0-9]*)?\}", "[0-9]{6} x? y+ z*"),
    ("anchor at start or end of text", r"[\^$]", "^ $"),
)
_SUBSET_TOKEN = re.compile("|".join(f"(?:{token})" for _, token, _ in REGEX_SUBSET[1:]) + f"|{REGEX_SUBSET[0][1]}",
                           re.DOTALL)


def subset_violations(pattern: str) -> list[str]:
    """The parts of ``pattern`` outside :data:`REGEX_SUBSET` (empty when it stays within it)."""
    problems, position = [], 0
    while position < len(pattern):
        token = _SUBSET_TOKEN.match(pattern, position)
        if token is None or token.end() == position:
            problems.append(pattern[position:position + 6])
            position += 1
            continue
        following = pattern[token.end():token.end() + 1]
        if re.fullmatch(r"[?*+]|\{[0-9]+(?:,[0-9]*)?\}", token.group()) and following in ("?", "+"):
            problems.append(token.group() + following)  # lazy or possessive
        position = token.end()
    return problems


# --- the pieces -------------------------------------------------------------------------------------------------
_LEFT_ALNUM = "(^|[^A-Za-z0-9])"  # a captured boundary: RE2 has no look-behind, so it is put back as \1
_LEFT_LETTER = "(^|[^A-Za-z])"
_LEFT_DIGIT = "(^|[^0-9])"
_RIGHT_LETTER = "([^A-Za-z]|$)"
_RIGHT_DIGIT = "([^0-9]|$)"


def _any_case(words: tuple[str, ...]) -> str:
    """An alternation of the words in any case, longest first (a scoped flag: a smaller program than listing each
    word in capitals, title case and lower case, so a match's boundaries are found faster)."""
    return "(?i:" + "|".join(sorted({w.lower() for w in words}, key=lambda w: (-len(w), w))) + ")"


# Romanised Hong Kong surnames and given-name syllables, for names that are not the row's own. Surnames that are
# common English words ("TO", "SO", "MAN", "IP", "LAW") or clinical abbreviations are left to the row-aware pass.
SURNAMES_EN = (
    "AU", "AU-YEUNG", "AUYEUNG", "CHAN", "CHAU", "CHENG", "CHEUNG", "CHIU", "CHOI", "CHOW", "CHU", "CHUI", "CHUNG",
    "FONG", "FUNG", "HO", "HUI", "HUNG", "KAM", "KO", "KWAN", "KWOK", "KWONG", "LAI", "LAM", "LAU", "LEE", "LEUNG",
    "LI", "LIU", "LUI", "LUK", "MAK", "MOK", "NG", "PANG", "POON", "SHEK", "SIU", "SZE", "SZETO", "TAM", "TANG",
    "TSANG", "TSE", "TSUI", "WONG", "WOO", "WU", "YAU", "YEUNG", "YIP", "YUEN", "YUNG", "FUNG", "KONG", "MA", "SO",
    "LO", "LAW", "YU", "TO", "MAN", "IP", "FAN", "HON", "KUNG", "KUNG-SUN", "SIN", "SHE", "SHUM", "CHING", "KAN",
)
GIVEN_EN = (
    "Tai", "Man", "Siu", "Ming", "Wing", "Ka", "Yan", "Wai", "Mei", "Ling", "Chi", "Kin", "Hoi", "Shan", "Kwan",
    "Fai", "Yee", "Hung", "Kit", "Lok", "Kung", "Koi", "Chun", "Wah", "Kwok", "Keung", "Yiu", "Sze", "Suet", "Yuk",
    "Lai", "Fung", "Pui", "Ying", "Hei", "Ho", "Hin", "Tsz", "Long", "Kei", "Yu", "Hang", "Chung", "Sing", "Kam",
    "Wun", "Yin", "Choi", "Sau", "Mun", "Kuen", "Fan", "Lun", "Nga", "Wan", "Ting", "Yat", "Kai", "Ngai", "Tak",
)
_SURNAME = _any_case(SURNAMES_EN)
# In capitals alone a surname is taken only when it is no English word or clinical abbreviation.
_CAPS_ALONE = tuple(s for s in SURNAMES_EN if s not in ("SO", "TO", "MAN", "IP", "FAN", "HON", "LAW", "MA", "SHE",
                                                         "SIN", "KAN", "AU", "HO", "LO", "YU", "NG"))  # NG tube
_SURNAME_CAPS = "(?:" + "|".join(sorted(_CAPS_ALONE, key=len, reverse=True)) + ")"
_GIVEN = _any_case(GIVEN_EN)
_GIVEN_LOWER = "(?:" + "|".join(sorted((g.lower() for g in GIVEN_EN), key=len, reverse=True)) + ")"
_GIVEN_NAME = f"{_GIVEN}(?:[ -]{_GIVEN}|-{_GIVEN_LOWER})?"
_TITLES = "(?:Mr|Mrs|Ms|Miss|Mdm|Madam|Dr|Prof|MR|MRS|MS|MDM|DR|mr|mrs|ms)"

CHINESE_SURNAMES = (
    "歐陽", "司徒", "上官", "諸葛", "司馬", "公孫", "陳", "李", "張", "黃", "何", "林", "王", "梁", "吳", "劉", "蔡",
    "楊", "鄭", "許", "謝", "郭", "曾", "羅", "鄧", "馮", "周", "朱", "胡", "葉", "潘", "蘇", "盧", "麥", "余", "伍",
    "譚", "徐", "袁", "彭", "馬", "莫", "唐", "區", "關", "方", "鄺", "簡", "廖", "江", "姚", "顏", "孔", "鍾", "韋",
    "趙", "孫", "杜", "施", "湯", "范", "容", "雷", "賴", "龍", "岑", "戴", "崔", "丁", "邱", "黎", "侯", "功", "冼",
    "佘", "甘", "翁", "游", "石", "文", "高",
)
# Characters common in Hong Kong given names; a surname followed by one or two of them is taken for a name.
# Words of clinical Chinese that start with a surname character (高血壓, 石硤尾, 文件) do not continue with one.
GIVEN_ZH = (
    "大文小明榮家欣偉美玲志健海珊君輝儀雄傑樂功蓋國華強偉俊豪嘉慧敏婷詩穎芝麗鳳玉蘭秀英珍霞燕萍雯"
    "恩晴琳欣怡淑慧嘉兒子軒浩宇朗峰鋒銘鴻偉德仁義禮智信忠孝安泰寶達耀輝鵬飛翔振坤梓晞曉彤琪瑩瑤"
    "碧翠倩卓澤霖熙昊琛凱鈞鑫森林杰傑權秋冬春夏莉慈潔"
)
_GIVEN_ZH = "[" + "".join(dict.fromkeys(GIVEN_ZH)) + "]"
# Traditional characters common in Hong Kong names, and their simplified forms (as typed on a mainland keyboard:
# 張偉明 as 张伟明). A row's own Chinese name is also looked for in these; a character not listed stays as it is.
TRADITIONAL_ZH = (
    "陳張黃劉楊鄭許謝羅鄧馮葉蘇盧麥譚馬區關鄺顏鍾韋趙孫湯賴龍歐陽諸簡龐吳勞溫貝鄒蕭嚴錢萬賈陸鄔魯蔣聶偉榮傑樂國華強"
    "穎麗鳳蘭兒軒鋒銘鴻義禮寶達輝鵬飛曉瑩瑤澤凱鈞權潔詩維愛寧靜瑋鳴鋼東長發財貴興順賢綺紅蓮嬌滿齊潤聰樹歡儀傳軍進遠"
    "運業啟鎮錦綠詠頌驊駿鶴豐濤燦煒嫻灝鏗顥廣慶應葦藝雲靈韻頤願標聲韓鄉劍燁蔭瓊"
)
SIMPLIFIED_ZH = (
    "陈张黄刘杨郑许谢罗邓冯叶苏卢麦谭马区关邝颜钟韦赵孙汤赖龙欧阳诸简庞吴劳温贝邹萧严钱万贾陆邬鲁蒋聂伟荣杰乐国华强"
    "颖丽凤兰儿轩锋铭鸿义礼宝达辉鹏飞晓莹瑶泽凯钧权洁诗维爱宁静玮鸣钢东长发财贵兴顺贤绮红莲娇满齐润聪树欢仪传军进远"
    "运业启镇锦绿咏颂骅骏鹤丰涛灿炜娴灏铿颢广庆应苇艺云灵韵颐愿标声韩乡剑烨荫琼"
)
# A compound surname may be typed with a space between its characters too (歐 陽).
_SURNAME_ZH = "(?:" + "|".join([*(f"{s[0]} {s[1]}" for s in CHINESE_SURNAMES if len(s) == 2), *CHINESE_SURNAMES]) + ")"
_HONORIFIC_ZH = "(?:先生|小姐|女士|太太|姑娘|醫生)"

# Addresses: a flat, floor, block or street number starts one; the building, estate or street after it continues.
_FLAT = "(?:Flat|FLAT|flat|Room|ROOM|room|Rm|RM|Unit|UNIT|Shop|SHOP)\\.? ?[0-9]{1,4}[A-Za-z]?"
_FLOOR = "(?:[0-9]{1,3} ?/ ?[Ff]|[GgLlUu]/[Ff]|[0-9]{1,2}(?:st|nd|rd|th) (?:Floor|floor|FLOOR))"
_BLOCK = "(?:Block|BLOCK|Blk|BLK|Tower|TOWER) ?[0-9A-Z]{1,2}"
_PLACE_WORD = ("(?:Estate|Court|Garden|Gardens|Building|Bldg|Mansion|Mansions|House|Centre|Center|Plaza|Terrace|"
               "Villas|Sun Chuen|Chuen|Shing|Horizons|Lau|Road|Rd|Street|St|Avenue|Ave|Lane|Path|Drive|Highway)")
_STREET_NUMBER = f"[0-9]{{1,4}}[A-Z]?,? (?:[A-Z][A-Za-z']* ){{1,4}}{_PLACE_WORD}"
_NAMED_PLACE = f"(?:[A-Z][A-Za-z']* ){{1,4}}{_PLACE_WORD}"
_ADDRESS_START = f"(?:{_FLAT}|{_FLOOR}|{_BLOCK}|{_STREET_NUMBER})"
_ZH_UNIT = "(?:[0-9]{1,3}(?:座|期|幢|棟)|[0-9]{1,3}(?:樓|層)|[0-9A-Za-z]{1,4}室)"
_ZH_ESTATE = f"{CJK_CLASS}{{1,6}}(?:邨|苑|村|花園|大廈|中心|廣場)"

# --- the third-party patterns, in the order they run -----------------------------------------------------------
EMAIL_TEXT_PATTERN = (
    "[A-Za-z0-9._%+-]+ ?(?:@|\\[(?i:at)\\]|\\((?i:at)\\)) ?[A-Za-z0-9-]+"
    "(?:(?:\\.| ?\\[(?i:dot)\\] ?| ?\\((?i:dot)\\) ?| (?i:dot) )[A-Za-z0-9-]+)+"
    "|[A-Za-z0-9._%+-]+ (?i:at) [A-Za-z0-9-]+(?: (?i:dot) [A-Za-z0-9-]+)+"
)
# One or two letters, six digits (or 3+3, 2+2+2 with spaces), an optional check digit in any dress.
_SIX_DIGITS = "(?:[0-9]{6}|[0-9]{3} [0-9]{3}|[0-9]{2} [0-9]{2} [0-9]{2})"
_CHECK = "(?: ?[(\\[] ?[0-9Aa] ?[)\\]]|[-.][0-9Aa]|[0-9Aa])?"
HKID_TEXT_PATTERN = f"{_LEFT_LETTER}(?:[A-Za-z]{{1,2}}{_SIX_DIGITS}|[A-Z]{{1,2}} {_SIX_DIGITS}){_CHECK}"
# The check digit a row's own HKID left behind when it was removed without it: "[HKID](3)".
HKID_CHECK_LEFT_PATTERN = "\\[HKID\\](?: ?[(\\[][0-9Aa][)\\]]|[-.][0-9Aa])"
_PHONE = ("(?:(?:\\+|00)?852[ .-]?|\\(\\+?852\\) ?)?"
          "(?:[2-9][0-9]{3}[ ./-]?[0-9]{4}|[2-9][0-9] [0-9]{2} [0-9]{2} [0-9]{2}|[2-9][0-9]{2} [0-9]{2} [0-9]{3})")
PHONE_TEXT_PATTERN = f"{_LEFT_DIGIT}{_PHONE}{_RIGHT_DIGIT}"
# A match takes the character after it, so of two phones one character apart the second is left: it follows
# "[PHONE]" and that character. The literal start makes this pass cheap on a text without one.
PHONE_AFTER_PHONE_PATTERN = f"(\\[PHONE\\][^0-9]){_PHONE}{_RIGHT_DIGIT}"
DATE_TEXT_PATTERN = f"{_LEFT_DIGIT}{DATE_PATTERN}{_RIGHT_DIGIT}"  # bounded: 0?[1-9] would stop at 1 of 19
# Likewise of two dates one character apart (2024-01-03至2024-01-10), as of two phones.
DATE_AFTER_DATE_PATTERN = f"(\\[DATE\\][^0-9]){DATE_PATTERN}{_RIGHT_DIGIT}"
ADDRESS_EN_PATTERN = f"{_LEFT_ALNUM}{_ADDRESS_START}(?:(?:, ?| ){_ADDRESS_START}|(?:, ?| ){_NAMED_PLACE})*"
ADDRESS_ZH_PATTERN = (f"(?:{_ZH_ESTATE})?{_ZH_UNIT}{{2,}}|{_ZH_ESTATE}{_ZH_UNIT}"
                      f"|{CJK_CLASS}{{1,6}}(?:道|街|路)[0-9]{{1,4}}號")
_NAME_EN = f"(?:{_GIVEN}[ -]{_GIVEN} {_SURNAME}|{_SURNAME},? {_GIVEN_NAME}|{_SURNAME_CAPS})"
NAME_EN_TEXT_PATTERN = f"{_LEFT_LETTER}{_NAME_EN}{_RIGHT_LETTER}"
NAME_EN_AFTER_NAME_PATTERN = f"(\\[NAME\\][^A-Za-z]){_NAME_EN}{_RIGHT_LETTER}"
# After a title: a surname with its given name (Dr Lee Ka Kit), or any capitalised word (Dr Leeds).
_TITLED = f"(?:{_SURNAME}(?: {_GIVEN_NAME})?|[A-Z][A-Za-z'-]*)"
TITLED_NAME_PATTERN = f"{_LEFT_LETTER}({_TITLES}\\.? ){_TITLED}{_RIGHT_LETTER}"
# A match takes the character after it: of two names one character apart (Dr Lee/Dr Wong) the second is left, and
# the leak guard refused the export. These passes take a name right after a token and that character.
TITLED_NAME_AFTER_NAME_PATTERN = f"(\\[NAME\\][^A-Za-z])({_TITLES}\\.? ){_TITLED}{_RIGHT_LETTER}"
NAME_ZH_TEXT_PATTERN = f"{_SURNAME_ZH} ?{_GIVEN_ZH}(?: ?{_GIVEN_ZH})?"
HONORIFIC_ZH_PATTERN = f"{_SURNAME_ZH}({_HONORIFIC_ZH})"


class TextPattern(NamedTuple):
    kind: str  # the identifier type: the word in the token ([EMAIL]) and the key of the leak counts
    pattern: str
    replacement: str  # {token} for the token; \1, \2 put captured boundaries back
    before_own: bool = False  # runs before the row's own identifiers are removed (an e-mail holds a name)


THIRD_PARTY_PATTERNS: tuple[TextPattern, ...] = (
    TextPattern("EMAIL", EMAIL_TEXT_PATTERN, "{token}", before_own=True),
    TextPattern("HKID", HKID_TEXT_PATTERN, "\\1{token}"),
    TextPattern("HKID", HKID_CHECK_LEFT_PATTERN, "{token}"),
    TextPattern("DATE", DATE_TEXT_PATTERN, "\\1{token}\\2"),
    TextPattern("DATE", DATE_AFTER_DATE_PATTERN, "\\1{token}\\2"),
    TextPattern("PHONE", PHONE_TEXT_PATTERN, "\\1{token}\\2"),
    TextPattern("PHONE", PHONE_AFTER_PHONE_PATTERN, "\\1{token}\\2"),
    TextPattern("ADDRESS", ADDRESS_EN_PATTERN, "\\1{token}"),
    TextPattern("ADDRESS", ADDRESS_ZH_PATTERN, "{token}"),
    TextPattern("NAME", TITLED_NAME_PATTERN, "\\1\\2{token}\\3"),
    TextPattern("NAME", TITLED_NAME_AFTER_NAME_PATTERN, "\\1\\2{token}\\3"),
    TextPattern("NAME", NAME_EN_TEXT_PATTERN, "\\1{token}\\2"),
    TextPattern("NAME", NAME_EN_AFTER_NAME_PATTERN, "\\1{token}\\2"),
    TextPattern("NAME", HONORIFIC_ZH_PATTERN, "{token}\\1"),
    TextPattern("NAME", NAME_ZH_TEXT_PATTERN, "{token}"),
)
