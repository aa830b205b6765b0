"""Simplified Chinese: splitting, numerals and the tables that read a command into the
hub's canonical command form.

Chinese has no spaces and no plural, so the English word tools cannot read it directly.
Instead each command is rewritten, with the registry's own aliases (every area and device
may carry Chinese names) and the tables below, into the canonical form the language-neutral
code already understands ("把客厅空调调高两度" -> "living room air conditioner raise by 2
degrees"). The tables hold vocabulary only (verbs, attributes, options, amounts, numerals);
nothing here is about a particular request. The model still sees the original text.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Sentence punctuation and the connectors that start a new command.
_SPLIT = re.compile(r"\s*(?:[，,、。；;！!？?\n]|然后|接着|并且|同时|之后|再把|再将)+\s*")
_LEADING = re.compile(r"^(?:然后|接着|并且|同时|还有|另外|再|也|请|麻烦你?|帮我|给我|能不能|可以)+")

# Command verbs (longest first when applied); the canonical form is English.
VERBS: tuple[tuple[str, str], ...] = (
    ("解锁", " unlock "), ("开锁", " unlock "), ("上锁", " lock "), ("锁上", " lock "),
    ("锁好", " lock "), ("锁门", " lock "), ("打开", " turn on "), ("开启", " turn on "),
    ("关掉", " turn off "), ("关闭", " turn off "), ("关上", " close "), ("关了", " turn off "),
    ("拉上", " close "), ("合上", " close "), ("放下来", " close "), ("放下", " close "),
    ("降下", " close "), ("拉开", " open "), ("升起", " open "), ("收起", " open "),
    ("暂停", " pause "), ("继续播放", " play "), ("播放", " play "), ("下一首", " next track "),
    ("上一首", " previous track "), ("静音", " mute "), ("消音", " mute "), ("启动", " start "),
    ("打扫", " start "), ("清扫", " start "), ("扫地", " start "), ("吸尘", " start "),
    ("开始", " start "), ("回充", " return to base "), ("回去充电", " return to base "),
    ("充电", " return to base "), ("喂", " feed "), ("预热", " preheat "),
    ("调到", " set to "), ("调成", " set to "), ("设成", " set to "), ("设为", " set to "),
    ("设置为", " set to "), ("设置成", " set to "), ("设到", " set to "), ("开到", " set to "),
    ("调整到", " set to "), ("改成", " set to "), ("改为", " set to "), ("切换到", " set to "),
    ("调高", " raise by "), ("升高", " raise by "), ("提高", " raise by "), ("调大", " raise by "),
    ("调亮", " raise by "), ("加大", " raise by "), ("调低", " lower by "), ("降低", " lower by "),
    ("调小", " lower by "), ("关小", " turn down "), ("开大", " turn up "), ("调暗", " lower by "), ("减小", " lower by "), ("减半", " halve "),
    ("运行", " run "), ("执行", " run "), ("开", " turn on "), ("关", " turn off "),
    ("停", " stop "), ("锁", " lock "), ("到", " to "),
)  # fmt: skip
# Amounts and directions, read before the numerals ("一点" is "a bit", not "1").
AMOUNTS: tuple[tuple[str, str], ...] = (
    ("关小一点", " a bit down "), ("关小点", " a bit down "), ("开大一点", " a bit up "),
    ("开大点", " a bit up "), ("亮一点", " a bit brighter "), ("亮一些", " a bit brighter "), ("暗一点", " a bit dimmer "),
    ("暗一些", " a bit dimmer "), ("大声一点", " a bit louder "), ("小声一点", " a bit quieter "),
    ("大一点", " a bit up "), ("小一点", " a bit down "), ("高一点", " a bit up "),
    ("低一点", " a bit down "), ("暖和一点", " a bit warmer "), ("热一点", " a bit warmer "),
    ("凉快一点", " a bit cooler "), ("冷一点", " a bit cooler "), ("一点点", " a bit "),
    ("一点", " a bit "), ("一些", " a bit "), ("一半", " halfway "), ("最亮", " max brightness "),
    ("最暗", " min brightness "), ("最大", " max "), ("最高", " max "), ("最小", " min "),
    ("最低", " min "), ("两倍", " twice as "), ("一下", " "), ("一直", " "), ("一会", " "),
)  # fmt: skip
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("多少度", " temperature "), ("几度", " temperature "), ("亮度", " brightness "), ("色温", " color temperature "), ("温度", " temperature "),
    ("音量", " volume "), ("声音", " volume "), ("湿度", " humidity "), ("风速", " fan speed "),
    ("风量", " fan speed "), ("颜色", " color "), ("模式", " mode "), ("位置", " position "),
    ("电量", " battery "), ("剩多少电", " battery "), ("功率", " power "), ("开了多少", " position "),
    ("频道", " channel "), ("摇头", " oscillate "), ("份", " portions "),
    # Switching the sound off is muting, not a volume: 把声音关掉, 关掉声音.
    ("声音关掉", " mute "), ("声音关了", " mute "), ("声音关上", " mute "), ("关掉声音", " mute "),
    ("关闭声音", " mute "), ("关声音", " mute "),
)  # fmt: skip
# Switching a device's sound off, the device between the verb and 声音 (关掉厨房音箱的声音):
# muting, like 关掉声音; the pivot rewrites it to "<device> 静音" before anything else.
SOUND_OFF = re.compile(r"(?:关掉|关闭|关上|关了|关)(.{1,16}?)的?声音")
OPTIONS: tuple[tuple[str, str], ...] = (
    ("制冷", " cool "), ("制热", " heat "), ("除湿", " dry "), ("送风", " fan only "),
    ("自动", " auto "), ("静音模式", " quiet "), ("睡眠", " sleep "), ("自然风", " natural "),
    ("红色", " red "), ("橙色", " orange "), ("黄色", " yellow "), ("绿色", " green "),
    ("蓝色", " blue "), ("紫色", " purple "), ("粉色", " pink "), ("粉红色", " pink "),
    ("白色", " white "), ("暖光", " warm white "), ("冷光", " cool white "),
)  # fmt: skip
# Option words that only mean an option after "to" ("风速调到高").
LEVELS = {"高": "high", "中": "medium", "低": "low"}
# Kinds of device and rooms, for words the home's own aliases do not cover.
KINDS: tuple[tuple[str, str], ...] = (
    ("空调", " air conditioner "), ("暖气", " heating "), ("灯带", " light strip "),
    ("台灯", " lamp "), ("灯", " light "), ("窗帘", " curtain "), ("百叶窗", " blind "),
    ("卷帘", " blind "), ("风扇", " fan "), ("电视", " tv "), ("音箱", " speaker "),
    ("烤箱", " oven "), ("微波炉", " microwave "), ("洗碗机", " dishwasher "), ("车库门", " garage door "),
    ("门锁", " lock "), ("窗户", " window "), ("门", " door "), ("加湿器", " humidifier "),
    ("除湿机", " dehumidifier "), ("扫地机", " vacuum "), ("热水器", " water heater "),
    ("阳台", " balcony "), ("书房", " study "), ("餐厅", " dining room "), ("花园", " garden "),
    ("地下室", " basement "), ("阁楼", " attic "), ("办公室", " office "),
    ("他的", " his "), ("她的", " her "), ("它的", " its "),
)  # fmt: skip
ALL_WORDS = ("都", "所有", "全部", "全都")
AND_WORDS = ("和", "跟", "以及", "与")
QUESTION_MARKS = (
    "多少",
    "几度",
    "几",
    "吗",
    "什么",
    "怎么样",
    "是不是",
    "有没有",
    "哪些",
    "哪个",
    "？",
    "?",
)

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
           "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千]+")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def zh_number(text: str) -> int | None:
    """二十三 -> 23, 两百 -> 200, 一百二 -> 120 (the spoken short form), 一百零二 -> 102."""
    total, digit, unit = 0, None, 0
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
            if ch in "零〇":
                unit = 1
        elif ch in _UNITS:
            total += (digit if digit is not None else 1) * _UNITS[ch]
            unit, digit = _UNITS[ch], None
        else:
            return None
    if digit is not None:
        # "一百二" is 120: a last digit right after 百 or 千 counts in the next unit down.
        total += digit * (unit // 10 if unit >= 100 else 1)
    return total


def numerals(text: str) -> str:
    """Chinese numerals and percentages as digits: 百分之三十 -> "30 percent"."""
    text = re.sub(
        r"百分之([零〇一二两三四五六七八九十百千\d.]+)", lambda m: f" {_num(m[1])} percent ", text
    )
    text = re.sub(
        r"([零〇一二两三四五六七八九十百千\d.]+)\s*度", lambda m: f" {_num(m[1])} degrees ", text
    )
    text = re.sub(r"半度", " 0.5 degrees ", text)
    text = re.sub(r"([\d.]+)\s*%", r" \1 percent ", text)

    def repl(m: re.Match[str]) -> str:
        value = zh_number(m[0])
        return f" {value} " if value is not None else m[0]

    return _NUMERAL.sub(repl, text)


_ZH_NUM = r"[零〇一二两三四五六七八九十百千\d]+"


def fractional_numerals(text: str) -> str:
    """Decimals and halves as one number, read before the amounts (where 一点 is "a bit"):
    一点五度 -> 1.5度, 两度半 -> 2.5度, 一个半 -> 1.5, 百分之七十五 stays for `numerals`."""

    def point(m: re.Match[str]) -> str:
        digits = "".join(str(_DIGITS.get(ch, ch)) for ch in m[2])
        return f"{_num(m[1])}.{digits}"

    text = re.sub(rf"({_ZH_NUM})点([零〇一二两三四五六七八九\d]+)", point, text)
    text = re.sub(rf"({_ZH_NUM})(度|个|格|档)半", lambda m: f"{_num(m[1])}.5{m[2]}", text)
    return text


def _num(text: str) -> str:
    if re.fullmatch(r"[\d.]+", text):
        return text
    value = zh_number(text)
    return str(value) if value is not None else text


def is_command(fragment: str) -> bool:
    """Does a fragment carry a command verb, an amount or a question (else it is context)?"""
    words = [z for z, _ in (*VERBS, *AMOUNTS) if z != "到"]  # "快递到了" is no command
    return any(z in fragment for z in words) or is_question(fragment)


def is_question(fragment: str) -> bool:
    return any(q in fragment for q in QUESTION_MARKS)


def split_zh(text: str) -> list[str]:
    """Commands of a Chinese request: split at punctuation and connectors (然后, 再把 ...);
    fragments without a command ("快递到了", "估计是饿了") are context of their neighbour."""
    question = text.rstrip().endswith(("？", "?"))
    parts = [_LEADING.sub("", p).strip() for p in _SPLIT.split(text.strip())]
    parts = [p for p in parts if p]
    if not parts:
        return [text.strip()]
    if question:
        parts[-1] += "？"
    commands = [
        p for p in parts if is_command(p) or re.search(r"[\d零一二两三四五六七八九十]+度", p)
    ]
    if not commands:
        return ["，".join(parts)]  # a statement: one goal ("猫一直在叫，估计是饿了")
    return commands


# Goals said instead of commands ("我好冷"): the kinds of device that serve them (English
# kind words, matched against the devices' names), the verb, and the direction of a change.
# A temperature word said of a thing (热水, 凉茶, 冷饮) is not how a person or a room feels.
THING_AFTER_TEMPERATURE = "水茶奶饭菜汤饮咖粥面"
GOALS: tuple[tuple[tuple[str, ...], tuple[str, ...], str, int], ...] = (
    (("冷", "凉"), ("climate", "heater", "heating", "radiator"), "set_temperature", 1),
    (("热", "闷"), ("fan",), "turn_on", 0),
    (("热", "闷"), ("climate",), "set_temperature", -1),
    (("咖啡",), ("coffee",), "turn_on", 0),
    (("喝茶", "烧水", "泡茶", "喝水", "烧壶水", "烧点水", "烧开水"), ("kettle",), "turn_on", 0),
    (("饿", "喵", "猫在叫", "猫一直在叫", "猫|狗|宠物+饭|吃|粮|餐"), ("feeder",), "press", 0),
    (("潮", "湿", "晾不干"), ("dehumidifier",), "turn_on", 0),
    (("黑", "看不见", "看不清", "暗"), ("light",), "turn_on", 0),
    (("吵", "太响"), ("media_player",), "set_volume", -1),
    (("听不见", "听不清", "声音太小"), ("media_player",), "set_volume", 1),
    (("看电影",), ("movie",), "activate", 0),
    (("睡觉", "晚安"), ("good night", "bedtime", "sleep"), "activate", 0),
    (("毛巾",), ("towel",), "turn_on", 0),
    (("脏", "猫毛", "灰尘"), ("vacuum",), "start", 0),
)
