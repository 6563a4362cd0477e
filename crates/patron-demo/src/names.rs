//! Name, place and product vocabularies for the generator.

/// Chinese surnames with pinyin.
pub const CN_SURNAMES: &[(&str, &str)] = &[
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("林", "Lin"),
];
/// Chinese given-name characters with pinyin.
pub const CN_GIVEN: &[(&str, &str)] = &[
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("娟", "Juan"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("霞", "Xia"),
    ("平", "Ping"),
    ("刚", "Gang"),
    ("欣", "Xin"),
    ("怡", "Yi"),
    ("浩", "Hao"),
    ("宇", "Yu"),
];
/// English given names.
pub const EN_FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Emma",
    "Olivia",
    "Noah",
    "Liam",
    "Sophia",
    "Ava",
    "Mia",
    "Lucas",
];
/// English surnames.
pub const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker",
];
/// German given names.
pub const DE_FIRST: &[&str] = &[
    "Lukas", "Anna", "Leon", "Lena", "Finn", "Mia", "Jonas", "Hannah", "Paul", "Lea", "Felix",
    "Marie", "Jürgen", "Jörg", "Sören", "Käthe",
];
/// German surnames.
pub const DE_LAST: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
];
/// French given names.
pub const FR_FIRST: &[&str] = &[
    "Léa",
    "Hugo",
    "Chloé",
    "Louis",
    "Manon",
    "Gabriel",
    "Inès",
    "Raphaël",
    "Camille",
    "Arthur",
    "Zoé",
    "Jules",
    "Élodie",
    "Stéphane",
];
/// French surnames.
pub const FR_LAST: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Girard",
];
/// Japanese given names (romanized).
pub const JP_FIRST: &[&str] = &[
    "Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Riku", "Sakura", "Kaito", "Mei",
];
/// Japanese surnames (romanized).
pub const JP_LAST: &[&str] = &[
    "Sato",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Ito",
    "Yamamoto",
    "Nakamura",
];

/// Cities per country.
pub const CITIES: &[(&str, &[&str])] = &[
    (
        "CN",
        &[
            "上海", "北京", "广州", "深圳", "杭州", "成都", "Shanghai", "Beijing",
        ],
    ),
    (
        "US",
        &[
            "New York",
            "Los Angeles",
            "Chicago",
            "Houston",
            "San Francisco",
            "Seattle",
        ],
    ),
    (
        "GB",
        &["London", "Manchester", "Birmingham", "Leeds", "Glasgow"],
    ),
    ("DE", &["Berlin", "München", "Hamburg", "Köln", "Frankfurt"]),
    ("FR", &["Paris", "Lyon", "Marseille", "Toulouse", "Nice"]),
    ("JP", &["Tokyo", "Osaka", "Yokohama", "Nagoya"]),
    ("SG", &["Singapore"]),
    ("AU", &["Sydney", "Melbourne", "Brisbane", "Perth"]),
];

/// How a country's name is written in exports, besides its code.
pub const COUNTRY_SPELLINGS: &[(&str, &[&str])] = &[
    ("CN", &["CN", "China", "中国", "cn"]),
    ("US", &["US", "USA", "United States"]),
    ("GB", &["GB", "United Kingdom", "UK"]),
    ("DE", &["DE", "Germany", "Deutschland"]),
    ("FR", &["FR", "France"]),
    ("JP", &["JP", "Japan"]),
    ("SG", &["SG", "Singapore"]),
    ("AU", &["AU", "Australia"]),
];

/// Email domains per country.
pub const DOMAINS: &[(&str, &[&str])] = &[
    (
        "CN",
        &["qq.com", "163.com", "126.com", "sina.com", "gmail.com"],
    ),
    (
        "US",
        &["gmail.com", "yahoo.com", "outlook.com", "icloud.com"],
    ),
    (
        "GB",
        &[
            "gmail.com",
            "hotmail.co.uk",
            "btinternet.com",
            "outlook.com",
        ],
    ),
    ("DE", &["web.de", "gmx.de", "gmail.com", "t-online.de"]),
    ("FR", &["orange.fr", "gmail.com", "free.fr", "laposte.net"]),
    ("JP", &["gmail.com", "yahoo.co.jp", "docomo.ne.jp"]),
    ("SG", &["gmail.com", "singnet.com.sg", "outlook.com"]),
    ("AU", &["gmail.com", "bigpond.com", "outlook.com"]),
];

/// Catalog categories with brands and a typical price in USD.
pub const CATEGORIES: &[(&str, &[&str], f64)] = &[
    (
        "Apparel",
        &["Northwind", "Lumen", "Urbanite", "Maple & Co"],
        45.0,
    ),
    ("Shoes", &["Stride", "Peak Runner", "Cobble"], 85.0),
    ("Beauty", &["Glow Lab", "Petal", "Lotus Skin"], 28.0),
    ("Electronics", &["Voltix", "Nimbus", "Arcwave"], 180.0),
    ("Home", &["Hearth", "Nordic Nest", "Casa Blanca"], 60.0),
    ("Kitchen", &["ChefMate", "Copperline"], 40.0),
    ("Sports", &["Peak Runner", "Tidal", "Summit"], 55.0),
    ("Toys", &["Brightblocks", "Tiny Tales"], 25.0),
    ("Books", &["Inkwell Press", "Paper Crane"], 18.0),
    (
        "Grocery",
        &["Green Valley", "Tea Garden", "Daily Bread"],
        9.0,
    ),
    ("Jewelry", &["Aurum", "Silverline"], 120.0),
    ("Bags", &["Carryall", "Urbanite"], 70.0),
];

/// Product nouns per category, combined with adjectives for names.
pub const NOUNS: &[(&str, &[&str])] = &[
    (
        "Apparel",
        &["T-Shirt", "Hoodie", "Jeans", "Dress", "Jacket", "Sweater"],
    ),
    ("Shoes", &["Sneakers", "Boots", "Sandals", "Loafers"]),
    (
        "Beauty",
        &["Serum", "Moisturizer", "Lipstick", "Face Mask", "Cleanser"],
    ),
    (
        "Electronics",
        &["Headphones", "Speaker", "Smartwatch", "Charger", "Tablet"],
    ),
    ("Home", &["Lamp", "Throw Blanket", "Vase", "Cushion", "Rug"]),
    ("Kitchen", &["Knife Set", "Pan", "Kettle", "Teapot"]),
    (
        "Sports",
        &["Yoga Mat", "Water Bottle", "Running Shorts", "Dumbbells"],
    ),
    (
        "Toys",
        &["Puzzle", "Building Set", "Plush Bear", "Board Game"],
    ),
    ("Books", &["Cookbook", "Novel", "Travel Guide", "Notebook"]),
    (
        "Grocery",
        &["Green Tea", "Coffee Beans", "Granola", "Olive Oil", "Honey"],
    ),
    ("Jewelry", &["Necklace", "Ring", "Earrings", "Bracelet"]),
    ("Bags", &["Backpack", "Tote", "Wallet", "Duffel"]),
];

/// Adjectives for product names.
pub const ADJECTIVES: &[&str] = &[
    "Classic",
    "Essential",
    "Premium",
    "Organic",
    "Everyday",
    "Deluxe",
    "Light",
    "Pro",
    "Mini",
    "Heritage",
    "Urban",
    "Eco",
    "Signature",
    "Travel",
    "Soft",
];

/// Ticket subjects.
pub const TICKET_SUBJECTS: &[&str] = &[
    "Where is my order?",
    "Wrong size delivered",
    "Refund not received",
    "Change delivery address",
    "Product arrived damaged",
    "Question about membership points",
    "Cannot log in to the app",
    "Invoice request",
    "Cancel my order",
    "Item out of stock",
];
