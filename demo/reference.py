"""Static reference data for the demo population: geography, catalogue, media, creators.

Everything here is constant (independent of the generation seed) so that the same
SKU, campaign or creator always means the same thing across demo runs.
"""

from __future__ import annotations

import numpy as np

CATEGORIES: tuple[str, ...] = (
    "skincare",
    "makeup",
    "fragrance",
    "haircare",
    "bodycare",
    "mens",
    "baby",
    "wellness",
)
CAT = {name: i for i, name in enumerate(CATEGORIES)}

CHANNELS: tuple[str, ...] = ("app", "web", "miniprogram", "store")
TIERS: tuple[str, ...] = ("tier1", "new_tier1", "tier2", "tier3", "tier4+")
INCOME_BANDS: tuple[str, ...] = ("low", "mid", "high", "very_high")
AGE_RANGES: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_RANGE_LOWER = np.array([18, 25, 35, 45, 55])

# (city, province, tier index, relative weight among the brand's customers)
CITIES: tuple[tuple[str, str, int, float], ...] = (
    ("北京", "北京市", 0, 5.0),
    ("上海", "上海市", 0, 5.5),
    ("广州", "广东省", 0, 4.0),
    ("深圳", "广东省", 0, 4.0),
    ("成都", "四川省", 1, 2.6),
    ("杭州", "浙江省", 1, 2.6),
    ("重庆", "重庆市", 1, 2.4),
    ("武汉", "湖北省", 1, 2.2),
    ("西安", "陕西省", 1, 1.9),
    ("苏州", "江苏省", 1, 2.0),
    ("天津", "天津市", 1, 1.8),
    ("南京", "江苏省", 1, 2.0),
    ("长沙", "湖南省", 1, 1.8),
    ("郑州", "河南省", 1, 1.8),
    ("东莞", "广东省", 1, 1.4),
    ("青岛", "山东省", 1, 1.5),
    ("沈阳", "辽宁省", 1, 1.3),
    ("宁波", "浙江省", 1, 1.4),
    ("昆明", "云南省", 1, 1.3),
    ("无锡", "江苏省", 2, 1.4),
    ("厦门", "福建省", 2, 1.5),
    ("合肥", "安徽省", 2, 1.6),
    ("福州", "福建省", 2, 1.5),
    ("济南", "山东省", 2, 1.6),
    ("大连", "辽宁省", 2, 1.4),
    ("哈尔滨", "黑龙江省", 2, 1.6),
    ("南宁", "广西壮族自治区", 2, 1.5),
    ("长春", "吉林省", 2, 1.4),
    ("泉州", "福建省", 2, 1.3),
    ("石家庄", "河北省", 2, 1.6),
    ("贵阳", "贵州省", 2, 1.4),
    ("南昌", "江西省", 2, 1.4),
    ("温州", "浙江省", 2, 1.3),
    ("佛山", "广东省", 2, 1.5),
    ("洛阳", "河南省", 3, 1.6),
    ("绍兴", "浙江省", 3, 1.6),
    ("珠海", "广东省", 3, 1.5),
    ("中山", "广东省", 3, 1.6),
    ("桂林", "广西壮族自治区", 3, 1.4),
    ("扬州", "江苏省", 3, 1.5),
    ("芜湖", "安徽省", 3, 1.4),
    ("赣州", "江西省", 3, 1.4),
    ("曲靖", "云南省", 4, 2.0),
    ("遵义", "贵州省", 4, 2.0),
    ("岳阳", "湖南省", 4, 2.0),
    ("商丘", "河南省", 4, 2.0),
    ("南充", "四川省", 4, 2.0),
    ("渭南", "陕西省", 4, 2.0),
)
CITY_NAMES = np.array([c[0] for c in CITIES], dtype=object)
CITY_PROVINCES = np.array([c[1] for c in CITIES], dtype=object)
CITY_TIER = np.array([c[2] for c in CITIES], dtype=np.int8)
CITY_WEIGHTS = np.array([c[3] for c in CITIES]) / sum(c[3] for c in CITIES)
# Share of the income bands (low, mid, high, very_high) per city tier.
INCOME_BY_TIER = np.array(
    [
        [0.12, 0.38, 0.33, 0.17],
        [0.18, 0.45, 0.28, 0.09],
        [0.25, 0.48, 0.22, 0.05],
        [0.35, 0.45, 0.17, 0.03],
        [0.45, 0.41, 0.12, 0.02],
    ]
)
# Offline stores per city tier (stores are numbered within the city).
STORES_PER_TIER = np.array([12, 8, 5, 3, 2])

# Catalogue: SKUs per category, sorted by list price (CNY); (code, count, min, max).
_CATALOGUE_SPEC = {
    "skincare": ("SK", 60, 89.0, 1680.0),
    "makeup": ("MU", 60, 59.0, 520.0),
    "fragrance": ("FR", 30, 199.0, 1580.0),
    "haircare": ("HC", 30, 39.0, 280.0),
    "bodycare": ("BC", 30, 29.0, 260.0),
    "mens": ("MN", 25, 49.0, 420.0),
    "baby": ("BB", 30, 39.0, 320.0),
    "wellness": ("WL", 25, 59.0, 680.0),
}


def _catalogue() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build the constant SKU catalogue (ids, list prices in cents, offsets per category)."""
    rng = np.random.default_rng(20261111)
    skus: list[str] = []
    prices: list[np.ndarray] = []
    offsets = [0]
    for name in CATEGORIES:
        code, count, low, high = _CATALOGUE_SPEC[name]
        raw = np.sort(np.exp(rng.uniform(np.log(low), np.log(high), count)))
        prices.append((np.round(raw) * 100 - 10).astype(np.int64))  # prices like 299.90
        skus.extend(f"{code}{10001 + 37 * i:06d}" for i in range(count))
        offsets.append(offsets[-1] + count)
    off = np.array(offsets, dtype=np.int64)
    return np.array(skus, dtype=object), np.concatenate(prices), off[:-1], np.diff(off)


SKU_IDS, SKU_PRICE_CENTS, SKU_OFFSET, SKU_COUNT = _catalogue()

# Ad media and the campaigns running on them: (category, media mask, cpm CNY, cpc CNY).
MEDIA: tuple[str, ...] = ("oceanengine", "tencent", "kuaishou", "baidu")
CAMPAIGNS: tuple[tuple[str, tuple[int, ...], float, float], ...] = (
    ("skincare", (0, 1, 2), 38.0, 1.8),
    ("skincare", (0, 1), 45.0, 2.4),
    ("skincare", (1, 3), 30.0, 1.5),
    ("makeup", (0, 2), 32.0, 1.2),
    ("makeup", (0,), 36.0, 1.4),
    ("makeup", (1, 2), 28.0, 1.1),
    ("fragrance", (0, 1), 42.0, 2.2),
    ("fragrance", (1,), 40.0, 2.0),
    ("haircare", (2, 3), 20.0, 0.8),
    ("haircare", (0, 1, 2), 22.0, 0.9),
    ("bodycare", (1, 2), 18.0, 0.7),
    ("bodycare", (0, 3), 19.0, 0.7),
    ("mens", (0, 2), 25.0, 1.0),
    ("mens", (1, 3), 24.0, 1.0),
    ("baby", (1, 2), 30.0, 1.3),
    ("baby", (0, 1), 33.0, 1.5),
    ("wellness", (1, 3), 21.0, 0.9),
    ("wellness", (0, 2), 23.0, 1.0),
    ("skincare", (0, 1, 2, 3), 35.0, 1.6),
    ("makeup", (0, 1, 2, 3), 30.0, 1.2),
)
CAMPAIGN_IDS = np.array([f"CMP2026{i + 1:03d}" for i in range(len(CAMPAIGNS))], dtype=object)
CAMPAIGN_CAT = np.array([CAT[c[0]] for c in CAMPAIGNS])
CAMPAIGN_MEDIA = np.array([[m in c[1] for m in range(len(MEDIA))] for c in CAMPAIGNS])
CAMPAIGN_CPM = np.array([c[2] for c in CAMPAIGNS])
CAMPAIGN_CPC = np.array([c[3] for c in CAMPAIGNS])
ADGROUPS_PER_CAMPAIGN = 4
CREATIVES_PER_ADGROUP = 3

# Creators (KOLs): (name, platform, focus categories, audience segment boost).
PLATFORMS: tuple[str, ...] = ("douyin", "xiaohongshu", "bilibili", "weibo")
PLATFORM_CONTENT_TYPES: tuple[tuple[str, ...], ...] = (
    ("video", "live"),
    ("note", "video"),
    ("video", "live"),
    ("note", "video"),
)
_CREATORS: tuple[tuple[str, int, tuple[str, ...], str], ...] = (
    ("美妆小雅", 0, ("makeup", "skincare"), "young"),
    ("护肤研究所", 1, ("skincare",), "premium"),
    ("口红一哥", 0, ("makeup",), "young"),
    ("成分党Lily", 1, ("skincare",), "premium"),
    ("贵妇护肤日记", 1, ("skincare", "fragrance"), "premium"),
    ("香水收藏家", 1, ("fragrance",), "premium"),
    ("宝妈日记", 0, ("baby",), "mom"),
    ("萌娃辣妈", 1, ("baby", "bodycare"), "mom"),
    ("育儿百科", 3, ("baby", "wellness"), "mom"),
    ("新手妈妈指南", 2, ("baby",), "mom"),
    ("潮流穿搭Kiki", 1, ("makeup", "fragrance"), "young"),
    ("B站美妆UP主", 2, ("makeup",), "young"),
    ("彩妆实验室", 2, ("makeup",), "young"),
    ("学生党平价好物", 0, ("makeup", "haircare"), "young"),
    ("男士理容", 0, ("mens",), ""),
    ("型男护肤", 2, ("mens", "skincare"), ""),
    ("健身营养师", 3, ("wellness",), ""),
    ("养生堂", 3, ("wellness",), ""),
    ("发型师Tony", 0, ("haircare",), ""),
    ("头皮护理专家", 1, ("haircare",), ""),
    ("身体护理控", 1, ("bodycare",), ""),
    ("居家好物", 3, ("bodycare", "wellness"), ""),
    ("精致白领", 1, ("skincare", "makeup"), "premium"),
    ("轻奢生活家", 3, ("fragrance", "skincare"), "premium"),
    ("直播带货王", 0, ("skincare", "makeup", "bodycare"), ""),
    ("好物种草机", 1, ("makeup", "haircare"), "young"),
    ("微博时尚", 3, ("makeup", "fragrance"), "young"),
    ("亲子时光", 0, ("baby", "bodycare"), "mom"),
    ("敏感肌救星", 1, ("skincare",), ""),
    ("科学护肤", 2, ("skincare",), "premium"),
)
CREATOR_IDS = np.array([f"KOL{1001 + i}" for i in range(len(_CREATORS))], dtype=object)
CREATOR_NAMES = np.array([c[0] for c in _CREATORS], dtype=object)
CREATOR_PLATFORM = np.array([c[1] for c in _CREATORS])
CREATOR_FOCUS = np.array([[1.0 if cat in c[2] else 0.0 for cat in CATEGORIES] for c in _CREATORS])
LATENT_SEGMENTS: tuple[str, ...] = ("premium", "young", "mom")
CREATOR_SEGMENT = np.array([LATENT_SEGMENTS.index(c[3]) if c[3] else -1 for c in _CREATORS])
CONTENTS_PER_CREATOR = 120
KOL_ACTIONS: tuple[str, ...] = ("view", "like", "comment", "share", "follow", "collect", "click_product")
KOL_ACTION_P = np.array([0.56, 0.17, 0.05, 0.04, 0.04, 0.08, 0.06])

# Third-party DMP segments: (code, name).
DMP_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("INT_BEAUTY", "美妆兴趣"),
    ("INT_SKINCARE", "护肤兴趣"),
    ("LIFE_PREMIUM", "高消费人群"),
    ("INT_MOMBABY", "母婴人群"),
    ("INT_FASHION", "时尚潮流"),
    ("INT_MENSCARE", "男士护理"),
    ("INT_FRAGRANCE", "香氛爱好者"),
    ("LIFE_YOUNG_PRO", "年轻白领"),
    ("INT_HEALTH", "健康养生"),
)
DMP_PROVIDERS: tuple[str, ...] = ("getui", "jiguang")
DEMO_PROVIDER = "talkingdata"

# Devices.
ANDROID_MODELS: tuple[tuple[str, str], ...] = (
    ("HUAWEI", "Mate 60 Pro"),
    ("HUAWEI", "P60"),
    ("HUAWEI", "nova 12"),
    ("HONOR", "Magic6"),
    ("HONOR", "X50"),
    ("Xiaomi", "Xiaomi 14"),
    ("Xiaomi", "Redmi K70"),
    ("Xiaomi", "Redmi Note 13"),
    ("OPPO", "Find X7"),
    ("OPPO", "Reno11"),
    ("OPPO", "A2"),
    ("vivo", "X100"),
    ("vivo", "S18"),
    ("vivo", "Y36"),
    ("OnePlus", "12"),
    ("Samsung", "Galaxy S24"),
    ("realme", "GT5"),
)
ANDROID_MODEL_P = np.array([9, 7, 6, 5, 4, 8, 6, 7, 5, 6, 4, 6, 5, 4, 3, 2, 3], dtype=float)
ANDROID_MODEL_P /= ANDROID_MODEL_P.sum()
IOS_MODELS: tuple[str, ...] = (
    "iPhone 12",
    "iPhone 13",
    "iPhone 14",
    "iPhone 14 Pro",
    "iPhone 15",
    "iPhone 15 Pro Max",
    "iPhone 16",
)
TABLET_MODELS: tuple[tuple[str, str], ...] = (
    ("Apple", "iPad Air"),
    ("HUAWEI", "MatePad 11"),
    ("Xiaomi", "Xiaomi Pad 6"),
    ("Apple", "iPad"),
)
TABLET_IS_IOS = np.array([True, False, False, True])
APP_VERSIONS: tuple[str, ...] = ("5.8.2", "5.9.0", "5.10.1", "5.11.0", "5.12.3", "6.0.0")
WEB_OS: tuple[str, ...] = ("Windows", "macOS", "Android", "iOS")
# Type allocation codes (first 8 IMEI digits) of phones sold in China.
IMEI_TACS = np.array(
    [86012345, 86420104, 86730203, 86891604, 86154506, 35209900, 35332510, 86966203, 86241705, 35875610]
)

PHONE_PREFIXES = np.r_[130:140, 150:154, 155:160, 166, 170, 173, 175:179, 180:190, 191, 195, 198, 199]

EMAIL_DOMAINS: tuple[str, ...] = (
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "gmail.com",
    "hotmail.com",
    "foxmail.com",
    "outlook.com",
)
EMAIL_DOMAIN_P = np.array([0.42, 0.2, 0.08, 0.05, 0.08, 0.05, 0.07, 0.05])
# fmt: off
PINYIN: tuple[str, ...] = (
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "he", "lin", "luo", "gao", "xiao", "mei", "ying", "jing", "ting", "lei",
    "hua", "fang", "yan", "wei", "jun", "hao", "yu", "xin", "jia", "qi", "lu", "na",
)
# fmt: on
SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁"
)
SURNAME_P = np.linspace(3.0, 0.6, len(SURNAMES))
SURNAME_P /= SURNAME_P.sum()
GIVEN_F: tuple[str, ...] = tuple("丽静敏婷雪芳娜慧颖琳欣怡佳悦晨思雨萱梦瑶蕾倩洁媛")
GIVEN_M: tuple[str, ...] = tuple("伟强磊军洋勇杰涛明超浩宇鹏辉斌博文志俊凯晨阳天子")

# Junk identifier values seen in raw data (never in the truth).
JUNK_PHONES: tuple[str, ...] = ("13800138000", "12345678901")
JUNK_EMAILS: tuple[str, ...] = ("unknown", "null")
JUNK_IMEIS: tuple[str, ...] = ("000000000000000", "unknown", "null")
JUNK_OAID = "00000000-0000-0000-0000-000000000000"
JUNK_IDFA = "00000000-0000-0000-0000-000000000000"
JUNK_ANDROID_ID = "9774d56d682e549c"
