//! Problems for the built-in corpus, generated from templates written by this project with
//! deterministic names and numbers: a few thousand distinct math, code, reasoning and knowledge
//! tasks, so a harvesting campaign or an evaluation harness in a built-in run does not repeat
//! itself after a few hundred requests.
//!
//! Not a benchmark: the problems are well formed and solvable (numbers are chosen so answers
//! come out clean), but nothing here computes or checks answers. The generator is a fixed
//! SplitMix64, not `rand`, so the list is the same on every machine and every dependency
//! version.

use std::collections::HashSet;

use super::{Category, Problem};

/// Builds the built-in problem list: Math, then Code, Reasoning and Knowledge.
pub(super) fn generate() -> Vec<Problem> {
    let mut out = Problems::default();
    math(&mut out);
    code(&mut out);
    reasoning(&mut out);
    knowledge(&mut out);
    out.items
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast and stable forever.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo <= hi`).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.abs_diff(lo) + 1;
        lo + (self.next() % span) as i64
    }

    /// One element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    /// `count` distinct elements of `items` (`count <= items.len()`), in random order.
    fn distinct<'a, T>(&mut self, items: &'a [T], count: usize) -> Vec<&'a T> {
        let mut chosen: Vec<&T> = items.iter().collect();
        self.shuffle(&mut chosen);
        chosen.truncate(count);
        chosen
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[derive(Default)]
struct Problems {
    items: Vec<Problem>,
    seen: HashSet<String>,
}

impl Problems {
    fn push(&mut self, category: Category, text: String) -> bool {
        if !self.seen.insert(text.clone()) {
            return false;
        }
        self.items.push(Problem { text, category });
        true
    }

    /// Adds up to `count` distinct problems from `make` (which may decline a draw with `None`),
    /// giving up after a bounded number of draws so a narrow template cannot loop forever.
    fn draw(
        &mut self,
        category: Category,
        count: usize,
        seed: u64,
        mut make: impl FnMut(&mut Mix) -> Option<String>,
    ) {
        let mut mix = Mix(seed);
        let mut added = 0;
        for _ in 0..count * 30 {
            if added == count {
                break;
            }
            if let Some(text) = make(&mut mix) {
                if self.push(category, text) {
                    added += 1;
                }
            }
        }
    }
}

const NAMES: &[&str] = &[
    "Ava", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jamal", "Kira",
    "Luis", "Maya", "Noah", "Olga", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Umar", "Vera",
    "Wei", "Yusuf", "Zoe", "Aiko", "Bruno", "Dara", "Emeka", "Freya",
];
const GIRLS: &[&str] = &[
    "Ava", "Chloe", "Elena", "Grace", "Isabel", "Kira", "Maya", "Olga", "Priya", "Rosa", "Tara",
    "Vera", "Zoe", "Aiko", "Freya",
];
const BOYS: &[&str] = &[
    "Ben", "Daniel", "Farid", "Hiro", "Jamal", "Luis", "Noah", "Quentin", "Samir", "Umar", "Wei",
    "Yusuf", "Bruno", "Emeka",
];

/// `$12` or `$12.50`.
fn money(cents: i64) -> String {
    if cents % 100 == 0 {
        format!("${}", cents / 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    }
}

/// `1st`, `2nd`, `3rd`, `11th`, `22nd`...
fn ordinal(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `2.25` for 9 quarters, `3` for 12.
fn quarters(q: i64) -> String {
    match q % 4 {
        0 => format!("{}", q / 4),
        1 => format!("{}.25", q / 4),
        2 => format!("{}.5", q / 4),
        _ => format!("{}.75", q / 4),
    }
}

/// `+ 7` or `- 7`.
fn signed(b: i64) -> String {
    if b < 0 {
        format!("- {}", -b)
    } else {
        format!("+ {b}")
    }
}

fn times(k: i64) -> String {
    match k {
        2 => "twice".into(),
        3 => "three times".into(),
        4 => "four times".into(),
        _ => format!("{k} times"),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn math(out: &mut Problems) {
    const N: usize = 65;
    let m = Category::Math;
    out.draw(m, N, 101, |r| {
        let name = r.pick(NAMES);
        let (item, lo, hi) = *r.pick(&[
            ("pencils", 25, 150),
            ("notebooks", 150, 600),
            ("apples", 40, 120),
            ("bus tickets", 150, 400),
            ("cupcakes", 150, 450),
            ("stickers", 10, 60),
            ("postcards", 50, 200),
        ]);
        let n = r.range(2, 12);
        let price = r.range(lo / 5, hi / 5) * 5;
        let bill = [500, 1000, 2000, 5000, 10000]
            .into_iter()
            .find(|b| *b > n * price)?;
        Some(format!(
            "{name} buys {n} {item} at {} each and pays with a {} note. How much change does {name} get?",
            money(price),
            money(bill)
        ))
    });
    out.draw(m, N, 102, |r| {
        let (vehicle, lo, hi) = *r.pick(&[
            ("train", 60, 160),
            ("car", 40, 110),
            ("cyclist", 12, 30),
            ("ferry", 15, 40),
            ("delivery van", 30, 90),
            ("coach", 50, 100),
        ]);
        let speed = r.range(lo, hi);
        let hours = r.range(2, 6);
        let later = r.range(1, 9);
        (later != hours).then(|| {
            format!(
                "A {vehicle} travels {} km in {hours} hours at a constant speed. How far does it travel in {later} hours at the same speed?",
                speed * hours
            )
        })
    });
    out.draw(m, N, 103, |r| {
        let thing = r.pick(&[
            "winter coat",
            "blender",
            "pair of headphones",
            "desk lamp",
            "backpack",
            "tennis racket",
            "coffee machine",
        ]);
        let price = r.range(20, 300);
        let first = r.pick(&[10, 15, 20, 25, 30, 40, 50]);
        let second = r.pick(&[5, 10, 15, 20]);
        Some(format!(
            "A {thing} normally costs ${price}. In a sale it is {first}% off, and a loyalty card takes a further {second}% off the sale price. What is the final price?"
        ))
    });
    out.draw(m, N, 104, |r| {
        let a = r.range(2, 12);
        let x = r.range(-15, 25);
        let b = r.range(-40, 40);
        if b == 0 {
            return None;
        }
        Some(if r.next() % 2 == 0 {
            format!("Solve for x: {a}x {} = {}.", signed(b), a * x + b)
        } else {
            format!("Solve for x: {a}(x {}) = {}.", signed(b), a * (x + b))
        })
    });
    out.draw(m, N, 105, |r| {
        let place = r.pick(&[
            "garden",
            "playground",
            "car park",
            "vegetable plot",
            "courtyard",
            "paddock",
        ]);
        let length = r.range(5, 60);
        let width = r.range(3, length);
        Some(format!(
            "A rectangular {place} is {length} m long and {width} m wide. How many metres of fencing are needed to go around it, and what is its area?"
        ))
    });
    out.draw(m, N, 106, |r| {
        let pair = r.distinct(NAMES, 2);
        let task = r.pick(&[
            "paint a fence",
            "tile a bathroom",
            "mow a large lawn",
            "assemble a set of shelves",
            "clean an office",
            "pick an orchard",
        ]);
        let x = r.range(2, 12);
        let y = r.range(2, 12);
        (x != y).then(|| {
            format!(
                "{} can {task} in {x} hours and {} can do it in {y} hours. How long will it take them working together?",
                pair[0], pair[1]
            )
        })
    });
    out.draw(m, N, 107, |r| {
        let name = r.pick(NAMES);
        let kind = r.pick(&["quizzes", "tests", "spelling tests", "lab reports"]);
        let scores: Vec<i64> = (0..4).map(|_| r.range(60, 98)).collect();
        let target = r.range(70, 92);
        let needed = 5 * target - scores.iter().sum::<i64>();
        (0..=100).contains(&needed).then(|| {
            format!(
                "{name} scored {}, {}, {} and {} on four {kind}. What score does {name} need on the fifth to average exactly {target}?",
                scores[0], scores[1], scores[2], scores[3]
            )
        })
    });
    out.draw(m, N, 108, |r| {
        let name = r.pick(NAMES);
        let principal = r.pick(&[500, 1000, 1500, 2000, 2500, 5000, 10000]);
        let rate = r.range(2, 8);
        let years = r.range(2, 10);
        Some(format!(
            "{name} invests ${principal} at {rate}% annual interest, compounded yearly. How much is the investment worth after {years} years, to the nearest cent?"
        ))
    });
    out.draw(m, N, 109, |r| {
        let first = r.range(-20, 30);
        let step = r.range(-9, 15);
        let n = r.range(10, 60);
        (step != 0).then(|| {
            format!(
                "The first term of an arithmetic sequence is {first} and the common difference is {step}. What is the {} term, and what is the sum of the first {n} terms?",
                ordinal(n)
            )
        })
    });
    out.draw(m, N, 110, |r| {
        let red = r.range(2, 10);
        let blue = r.range(2, 10);
        let green = r.range(2, 10);
        let colour = r.pick(&["red", "blue", "green"]);
        Some(format!(
            "A bag contains {red} red, {blue} blue and {green} green marbles. Two marbles are drawn without replacement. What is the probability that both are {colour}?"
        ))
    });
    out.draw(m, N, 111, |r| {
        let a = r.range(6, 45);
        let b = r.range(6, 45);
        let hour = r.range(6, 9);
        (a != b && a % b != 0 && b % a != 0).then(|| {
            format!(
                "One bus leaves the depot every {a} minutes and another every {b} minutes. Both leave at {hour}:00. At what time do they next leave together?"
            )
        })
    });
    out.draw(m, N, 112, |r| {
        let servings = *r.pick(&[2, 4, 6, 8]);
        let flour = r.range(3, 14);
        let wanted = r.range(3, 24);
        let ingredient = r.pick(&["cups of flour", "tablespoons of sugar", "cups of milk"]);
        (wanted != servings).then(|| {
            format!(
                "A recipe for {servings} servings uses {} {ingredient}. How much is needed for {wanted} servings?",
                quarters(flour)
            )
        })
    });
    out.draw(m, N, 113, |r| {
        // Ages with integer answers: with n a multiple of the younger age b, the multiplier
        // k = m + (m - 1) * n / b is an integer.
        let pair = r.distinct(NAMES, 2);
        let young = r.range(3, 15);
        let later = r.range(1, 3);
        let multiple = r.range(2, 4);
        let k = multiple + (multiple - 1) * later;
        let years = young * later;
        (k * young <= 90).then(|| {
            format!(
                "{} is {} as old as {}. In {years} years, {} will be {} as old as {}. How old is each of them now?",
                pair[0],
                times(k),
                pair[1],
                pair[0],
                times(multiple),
                pair[1]
            )
        })
    });
    out.draw(m, N, 114, |r| {
        let total = *r.pick(&[20, 25, 40, 50, 80, 120, 200, 250, 400, 500]);
        let percent = r.range(1, 19) * 5;
        let people = r.pick(&[
            "students",
            "office workers",
            "commuters",
            "parents",
            "teenagers",
            "retirees",
        ]);
        let habit = r.pick(&[
            "walk to work or school",
            "prefer tea to coffee",
            "own a bicycle",
            "read before bed",
            "cook dinner most nights",
        ]);
        (total * percent % 100 == 0).then(|| {
            format!(
                "In a survey of {total} {people}, {} said they {habit}. What percentage of those surveyed is that?",
                total * percent / 100
            )
        })
    });
    out.draw(m, N, 115, |r| {
        let litres = r.range(20, 500);
        let leak = r.range(5, 90) * 10;
        Some(format!(
            "A tank holds {litres} litres of water and leaks {leak} millilitres per minute. How many hours and minutes does it take to empty completely?"
        ))
    });
    out.draw(m, N, 116, |r| {
        let product = r.pick(&["cereal", "coffee", "rice", "washing powder", "dog food"]);
        let small = r.range(2, 6) * 100;
        let large = small + r.range(1, 6) * 100;
        let small_price = r.range(15, 60) * 10;
        let large_price = small_price * large / small - r.range(1, 20) * 5;
        Some(format!(
            "A {small} g pack of {product} costs {} and a {large} g pack costs {}. Which is the better value per 100 g, and by how much?",
            money(small_price),
            money(large_price)
        ))
    });
    out.draw(m, N, 117, |r| {
        let a = r.range(12, 240);
        let b = r.range(12, 240);
        (a != b && gcd(a, b) > 1).then(|| {
            format!(
                "What are the greatest common divisor and the least common multiple of {a} and {b}?"
            )
        })
    });
}

/// Things a function can do; `{n}` and `{k}` receive small numbers.
const CODE_TASKS: &[&str] = &[
    "returns the {n}th Fibonacci number",
    "checks whether a string is a palindrome, ignoring case and punctuation",
    "counts the vowels in a string",
    "returns all prime numbers below {n}",
    "reverses the order of the words in a sentence",
    "merges two sorted lists into one sorted list",
    "removes duplicates from a list while keeping the original order",
    "finds the second largest number in a list",
    "converts a Roman numeral to an integer",
    "converts an integer between 1 and 3999 to a Roman numeral",
    "checks whether two strings are anagrams of each other",
    "flattens an arbitrarily nested list",
    "computes the greatest common divisor of two integers",
    "returns the binary representation of a non-negative integer as a string",
    "finds the longest common prefix of a list of strings",
    "rotates a list to the right by {k} positions",
    "groups a list of words by their first letter",
    "computes the moving average of a list of numbers with a window of size {k}",
    "returns the most frequent element of a list",
    "checks whether a number is a perfect square without using floating point",
    "splits a list into chunks of size {k}",
    "counts how often each word appears in a text",
    "computes the factorial of a number recursively",
    "finds the index of a target value in a sorted array using binary search",
    "transposes a matrix given as a list of rows",
    "checks whether the brackets in a string are balanced",
    "converts a string from snake_case to camelCase",
    "returns the sum of the digits of a number",
    "returns the nth row of Pascal's triangle",
    "finds all pairs of numbers in a list that add up to {n}",
    "returns the day of the week for a date given as YYYY-MM-DD",
    "computes the Levenshtein distance between two strings",
    "returns the run-length encoding of a string",
    "implements a stack with push, pop and peek",
    "implements a queue using two stacks",
    "checks whether a year is a leap year",
    "returns the kth smallest element of an unsorted list",
    "computes the dot product of two vectors of equal length",
    "generates all permutations of a string",
    "counts the islands in a grid of 0s and 1s",
    "sorts a list of (name, age) records by age and then by name",
    "finds the length of the longest increasing subsequence of a list",
    "returns the intersection of two lists without duplicates",
    "capitalises the first letter of every word in a sentence",
    "converts a list of temperatures from Celsius to Fahrenheit",
    "computes the median of a list of numbers",
    "detects whether a singly linked list has a cycle",
    "returns the number of days between two dates",
    "checks whether a sentence contains every letter of the alphabet",
    "finds the largest sum of a contiguous subarray",
    "returns the first {n} numbers of the Collatz sequence starting from a given number",
    "checks whether a string is a valid IPv4 address",
    "returns the longest word in a sentence",
    "converts a number of seconds into hours, minutes and seconds",
];

const LANGUAGES: &[&str] = &[
    "Python",
    "JavaScript",
    "TypeScript",
    "Rust",
    "Go",
    "Java",
    "C++",
    "C#",
    "Kotlin",
    "Ruby",
];

const CODE_FORMS: &[&str] = &[
    "Write a {lang} function that {task}.",
    "In {lang}, implement a function that {task}. Include a few test cases.",
    "How would you write a {lang} function that {task}? Explain its time complexity.",
    "Write an efficient {lang} function that {task}, and explain how it works.",
];

/// SQL tasks over a small schema; `{n}` and `{year}` receive numbers.
const SQL_TASKS: &[&str] = &[
    "returns the {n} customers with the highest total spend",
    "counts the orders placed in each month of {year}",
    "finds customers who have not placed an order since {year}",
    "returns the average order total per country",
    "lists products that have never been ordered",
    "returns each customer's first order date",
    "finds orders whose total is more than {n} times the customer's average order",
    "returns the top {n} products by quantity sold in {year}",
    "computes a running total of order value per customer, ordered by date",
    "finds duplicate customer email addresses",
];

fn code(out: &mut Problems) {
    let c = Category::Code;
    out.draw(c, 520, 201, |r| {
        let form = r.pick(CODE_FORMS);
        let task = r
            .pick(CODE_TASKS)
            .replace("{n}", &r.range(5, 100).to_string())
            .replace("{k}", &r.range(2, 9).to_string());
        let language = *r.pick(LANGUAGES);
        Some(form.replace("{lang}", language).replace("{task}", &task))
    });
    out.draw(c, 60, 202, |r| {
        let task = r
            .pick(SQL_TASKS)
            .replace("{n}", &r.range(3, 20).to_string())
            .replace("{year}", &r.range(2015, 2024).to_string());
        let dialect = r.pick(&["PostgreSQL", "MySQL", "SQLite", "standard SQL"]);
        Some(format!(
            "Write a {dialect} query that {task}. Tables: customers(id, name, email, country), orders(id, customer_id, total, created_at), order_items(order_id, product_id, quantity), products(id, name, price)."
        ))
    });
    for problem in DEBUG_TASKS {
        out.push(c, (*problem).to_owned());
    }
}

/// Small debugging tasks, written out in full.
const DEBUG_TASKS: &[&str] = &[
    "This Python function should return the largest number in a list, but it returns 0 for [-3, -7, -1]. Why, and how do I fix it?\n\ndef largest(xs):\n    best = 0\n    for x in xs:\n        if x > best:\n            best = x\n    return best",
    "Why does this JavaScript print 3 three times instead of 0, 1, 2?\n\nfor (var i = 0; i < 3; i++) {\n  setTimeout(() => console.log(i), 0);\n}",
    "My Python function keeps remembering items between calls. What is wrong?\n\ndef add_item(item, basket=[]):\n    basket.append(item)\n    return basket",
    "This Rust code fails to compile with 'borrow of moved value'. Explain the error and fix it.\n\nlet name = String::from(\"Ada\");\nlet greeting = name;\nprintln!(\"{} {}\", name, greeting);",
    "Why does this Java comparison print false?\n\nString a = new String(\"hi\");\nString b = new String(\"hi\");\nSystem.out.println(a == b);",
    "This C function is supposed to return the length of a string but sometimes crashes. Find the bug.\n\nint length(char *s) {\n    int n = 0;\n    while (s[n] != '\\0' || n < 100) n++;\n    return n;\n}",
    "My Go program prints the same pointer value for every element. Why?\n\nvar ptrs []*int\nfor _, v := range []int{1, 2, 3} {\n    ptrs = append(ptrs, &v)\n}",
    "This SQL query returns more rows than expected. What is wrong?\n\nSELECT c.name, SUM(o.total)\nFROM customers c, orders o\nGROUP BY c.name;",
    "Why does 0.1 + 0.2 == 0.3 evaluate to false in Python, and how should I compare floats?",
    "This Python loop never ends. Why?\n\ni = 10\nwhile i != 0:\n    i -= 3",
];

const SEQUENCE_KINDS: u64 = 6;

fn reasoning(out: &mut Problems) {
    const N: usize = 55;
    let q = Category::Reasoning;
    out.draw(q, N, 301, |r| {
        let (more, less, most, least) = *r.pick(&[
            ("taller", "shorter", "tallest", "shortest"),
            ("older", "younger", "oldest", "youngest"),
            ("faster", "slower", "fastest", "slowest"),
            ("heavier", "lighter", "heaviest", "lightest"),
        ]);
        let size = r.range(3, 5) as usize;
        let order = r.distinct(NAMES, size);
        let mut facts: Vec<String> = order
            .windows(2)
            .map(|w| {
                if r.next() % 2 == 0 {
                    format!("{} is {more} than {}.", w[0], w[1])
                } else {
                    format!("{} is {less} than {}.", w[1], w[0])
                }
            })
            .collect();
        r.shuffle(&mut facts);
        let question = match r.next() % 3 {
            0 => format!("Who is the {most}?"),
            1 => format!("Who is the {least}?"),
            _ => format!("Is {} {less} than {}?", order[size - 1], order[0]),
        };
        Some(format!(
            "{} {question} Explain your reasoning.",
            facts.join(" ")
        ))
    });
    out.draw(q, N, 302, |r| {
        let day = r.pick(&[
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ]);
        let days = r.range(10, 1000);
        Some(if r.next() % 3 == 0 {
            format!("If today is {day}, what day of the week was it {days} days ago?")
        } else {
            format!("If today is {day}, what day of the week will it be {days} days from now?")
        })
    });
    out.draw(q, N, 303, |r| {
        let words = r.distinct(
            &[
                "wugs", "blickets", "daxes", "feps", "toves", "zorbs", "glims", "prats", "lorbs",
                "mimsies", "snarks", "vorps", "quibs", "tazzles",
            ],
            3,
        );
        let (a, b, c) = (words[0], words[1], words[2]);
        Some(match r.next() % 5 {
            0 => format!("All {a} are {b}. All {b} are {c}. Are all {a} {c}? Explain your reasoning."),
            1 => format!("All {a} are {b}. Some {b} are {c}. Does it follow that some {a} are {c}? Explain."),
            2 => format!("No {a} are {b}. All {c} are {b}. Can any {c} be {a}? Explain."),
            3 => format!("Some {a} are {b}. No {b} are {c}. Must some {a} not be {c}? Explain."),
            _ => format!("All {a} are {b}. No {c} are {b}. Can something be both one of the {a} and one of the {c}? Explain."),
        })
    });
    out.draw(q, N, 304, |r| {
        let terms: Vec<i64> = match r.next() % SEQUENCE_KINDS {
            0 => {
                let (a, d) = (r.range(-10, 30), r.range(2, 13));
                (0..5).map(|i| a + i * d).collect()
            }
            1 => {
                let (a, k) = (r.range(1, 7), r.range(2, 4));
                (0..5).map(|i| a * k.pow(i as u32)).collect()
            }
            2 => {
                let c = r.range(-5, 10);
                let start = r.range(1, 6);
                (start..start + 5).map(|i| i * i + c).collect()
            }
            3 => {
                let (a, b) = (r.range(1, 9), r.range(1, 9));
                let mut seq = vec![a, b];
                for i in 2..6 {
                    seq.push(seq[i - 1] + seq[i - 2]);
                }
                seq
            }
            4 => {
                let (a, d, e) = (r.range(1, 20), r.range(2, 6), r.range(-4, -1));
                (0..6)
                    .map(|i| {
                        if i % 2 == 0 {
                            a + (i / 2) * d
                        } else {
                            a + 50 + (i / 2) * e
                        }
                    })
                    .collect()
            }
            _ => {
                let (a, d) = (r.range(1, 10), r.range(1, 4));
                let mut seq = vec![a];
                for i in 1..5 {
                    seq.push(seq[i - 1] + i as i64 * d);
                }
                seq
            }
        };
        let shown: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
        Some(format!(
            "What number comes next in the sequence {}, ...? Explain the pattern.",
            shown.join(", ")
        ))
    });
    out.draw(q, N, 305, |r| {
        let people = r.distinct(NAMES, 3);
        let (a, b, c) = (people[0], people[1], people[2]);
        let statements = match r.next() % 5 {
            0 => format!("{a} says: \"{b} is a knave.\" {b} says: \"{a} and I are both knights.\""),
            1 => format!("{a} says: \"At least one of the two of us is a knave.\" {b} says nothing."),
            2 => format!("{a} says: \"{b} and I are both knaves.\""),
            3 => format!("{a} says: \"{b} and I are the same kind.\" {b} says: \"{a} is a knave.\""),
            _ => format!("{a} says: \"{b} is a knave.\" {b} says: \"{c} is a knave.\" {c} says: \"{a} and {b} are both knaves.\""),
        };
        Some(format!(
            "On an island, knights always tell the truth and knaves always lie. {statements} Which of them are knights and which are knaves?"
        ))
    });
    out.draw(q, N, 306, |r| {
        let hour = r.range(1, 12);
        let minute = r.range(0, 59);
        Some(format!(
            "What is the smaller angle between the hour hand and the minute hand of a clock at {hour}:{minute:02}?"
        ))
    });
    out.draw(q, N, 307, |r| {
        let coins = r.range(3, 200);
        let kind = r.pick(&["lighter", "heavier"]);
        Some(format!(
            "You have {coins} identical-looking coins, and exactly one is slightly {kind} than the rest. With a balance scale, what is the minimum number of weighings that guarantees you find it? Explain your strategy."
        ))
    });
    out.draw(q, N, 308, |r| {
        let brothers = r.range(1, 6);
        let sisters = r.range(1, 6);
        Some(if r.next() % 2 == 0 {
            format!(
                "{} has {brothers} brothers and {sisters} sisters. How many sisters does each of her brothers have?",
                r.pick(GIRLS)
            )
        } else {
            format!(
                "{} has {brothers} brothers and {sisters} sisters. How many brothers does each of his sisters have?",
                r.pick(BOYS)
            )
        })
    });
    out.draw(q, N, 309, |r| {
        let event = r.pick(&[
            "the picnic",
            "the football match",
            "the outdoor concert",
            "the school trip",
            "the street market",
            "the boat race",
        ]);
        let cause = r.pick(&[
            "it rains",
            "the coach breaks down",
            "fewer than ten people sign up",
            "the field is flooded",
            "the wind is too strong",
        ]);
        Some(match r.next() % 3 {
            0 => format!("If {cause}, {event} is cancelled. {} was not cancelled. What can you conclude, and why?", capitalise(event)),
            1 => format!("If {cause}, {event} is cancelled. {} was cancelled. Can you conclude that {cause}? Explain.", capitalise(event)),
            _ => format!("{} goes ahead only if it is not the case that {cause}. {} went ahead. What follows, and what does not?", capitalise(event), capitalise(event)),
        })
    });
    out.draw(q, N, 310, |r| {
        let people = r.distinct(NAMES, 3);
        let (noun, things) = *r.pick(&[
            ("pet", ["a cat", "a dog", "a parrot"]),
            ("drink", ["tea", "coffee", "juice"]),
            ("instrument", ["the piano", "the violin", "the drums"]),
            ("house colour", ["red", "blue", "green"]),
        ]);
        let mut owned: Vec<&str> = things.to_vec();
        r.shuffle(&mut owned);
        // Clue 1 fixes the second person's item; clue 2 rules out the third person's item for
        // the first person, which leaves exactly one assignment.
        let (verb, negated) = match noun {
            "pet" => ("owns", "does not own"),
            "drink" => ("drinks", "does not drink"),
            "instrument" => ("plays", "does not play"),
            _ => ("lives in the house that is", "does not live in the house that is"),
        };
        Some(format!(
            "{}, {} and {} each have a different {noun}: {}, {} or {}. {} {verb} {}. {} {negated} {}. Who has which {noun}?",
            people[0], people[1], people[2], things[0], things[1], things[2],
            people[1], owned[1], people[0], owned[2]
        ))
    });
}

const COUNTRIES: &[&str] = &[
    "France",
    "Japan",
    "Brazil",
    "Kenya",
    "Canada",
    "India",
    "Australia",
    "Egypt",
    "Mexico",
    "Norway",
    "Vietnam",
    "Argentina",
    "Nigeria",
    "Poland",
    "Turkey",
    "Indonesia",
    "Peru",
    "Morocco",
    "Sweden",
    "South Korea",
    "Chile",
    "Greece",
    "Thailand",
    "Ireland",
    "Ethiopia",
    "New Zealand",
    "Portugal",
    "Colombia",
    "Finland",
    "the Philippines",
    "Ghana",
    "Hungary",
    "Malaysia",
    "Switzerland",
    "Cuba",
    "Mongolia",
    "Nepal",
    "Iceland",
    "Tanzania",
    "Austria",
    "Bangladesh",
    "Denmark",
    "Jordan",
    "Kazakhstan",
    "Spain",
    "Italy",
    "Senegal",
    "Uruguay",
];

const COUNTRY_FORMS: &[&str] = &[
    "What is the capital of {x}?",
    "What currency is used in {x}?",
    "Which languages are widely spoken in {x}?",
    "Give a brief overview of the history of {x}.",
    "What are the main exports of {x}?",
    "Describe the geography and climate of {x}.",
    "What form of government does {x} have?",
];

const CONCEPTS: &[&str] = &[
    "photosynthesis",
    "plate tectonics",
    "natural selection",
    "the greenhouse effect",
    "supply and demand",
    "opportunity cost",
    "the placebo effect",
    "entropy",
    "osmosis",
    "the Doppler effect",
    "inflation",
    "the immune response",
    "DNA replication",
    "black holes",
    "the water cycle",
    "antibiotic resistance",
    "the theory of relativity",
    "cognitive dissonance",
    "the separation of powers",
    "herd immunity",
    "the nitrogen cycle",
    "quantum entanglement",
    "the scientific method",
    "comparative advantage",
    "impressionism",
    "the Renaissance",
    "nuclear fission",
    "superconductivity",
    "the carbon cycle",
    "the Big Bang theory",
    "game theory",
    "public-key cryptography",
    "the Krebs cycle",
    "ocean acidification",
    "the ozone layer",
    "the circadian rhythm",
    "price elasticity",
    "the Coriolis effect",
    "mitosis",
    "the printing press",
    "the Enlightenment",
    "baroque music",
    "the Turing test",
    "vaccination",
    "the tragedy of the commons",
    "keystone species",
    "El Niño",
    "the periodic table",
    "semiconductors",
    "continental drift",
    "plate boundaries",
    "the electromagnetic spectrum",
    "the Silk Road",
    "the placebo-controlled trial",
    "the rule of law",
    "monetary policy",
];

const CONCEPT_FORMS: &[&str] = &[
    "What is {x}? Explain it in a short paragraph.",
    "Why is {x} important?",
    "Explain {x} to a secondary-school student.",
    "What are common misconceptions about {x}?",
];

const ELEMENTS: &[&str] = &[
    "hydrogen",
    "helium",
    "lithium",
    "carbon",
    "nitrogen",
    "oxygen",
    "sodium",
    "magnesium",
    "aluminium",
    "silicon",
    "phosphorus",
    "sulfur",
    "chlorine",
    "potassium",
    "calcium",
    "titanium",
    "iron",
    "copper",
    "zinc",
    "silver",
    "tin",
    "iodine",
    "tungsten",
    "platinum",
    "gold",
    "mercury",
    "lead",
    "uranium",
    "neon",
    "cobalt",
];

const ELEMENT_FORMS: &[&str] = &[
    "What is the atomic number of {x}, and in which group of the periodic table is it?",
    "What are the main uses of {x}?",
    "Where is {x} found in nature, and how is it obtained?",
];

const EVENTS: &[&str] = &[
    "the French Revolution",
    "the fall of the Western Roman Empire",
    "the signing of Magna Carta",
    "the American Civil War",
    "the Meiji Restoration",
    "the Black Death",
    "the Industrial Revolution",
    "the Russian Revolution of 1917",
    "the Great Depression",
    "the partition of India",
    "the Apollo 11 moon landing",
    "the fall of the Berlin Wall",
    "the Protestant Reformation",
    "the Cuban Missile Crisis",
    "the end of apartheid in South Africa",
    "the Norman conquest of England",
    "the voyages of Zheng He",
    "the Spanish flu pandemic",
    "the founding of the United Nations",
    "the collapse of the Soviet Union",
    "the Battle of Waterloo",
    "the Haitian Revolution",
    "the unification of Germany in 1871",
    "the construction of the Panama Canal",
    "the Irish Famine",
    "the Congress of Vienna",
    "the Mongol conquests",
    "the Scramble for Africa",
    "the Treaty of Westphalia",
    "the invention of the telephone",
];

const EVENT_FORMS: &[&str] = &[
    "When did {x} happen, and what were its main causes?",
    "What were the main consequences of {x}?",
    "Who were the key figures in {x}?",
];

fn knowledge(out: &mut Problems) {
    let lists: [(&[&str], &[&str]); 4] = [
        (COUNTRIES, COUNTRY_FORMS),
        (CONCEPTS, CONCEPT_FORMS),
        (ELEMENTS, ELEMENT_FORMS),
        (EVENTS, EVENT_FORMS),
    ];
    for (subjects, forms) in lists {
        for form in forms {
            for subject in subjects {
                out.push(Category::Knowledge, form.replace("{x}", subject));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        assert_eq!(money(1250), "$12.50");
        assert_eq!(money(500), "$5");
        assert_eq!(money(5), "$0.05");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(53), "53rd");
        assert_eq!(quarters(9), "2.25");
        assert_eq!(quarters(12), "3");
        assert_eq!(signed(-7), "- 7");
        assert_eq!(capitalise("the picnic"), "The picnic");
    }

    #[test]
    fn problems_are_distinct_and_plentiful() {
        let problems = generate();
        let unique: HashSet<&str> = problems.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(unique.len(), problems.len());
        assert!(problems.len() >= 2000, "{}", problems.len());
    }

    #[test]
    fn every_template_contributes() {
        // A template whose constraints reject nearly every draw would silently shrink the
        // corpus; each must reach most of its quota.
        let problems = generate();
        let starts = [
            "Solve for x",
            "A rectangular",
            "In a survey of",
            "What are the greatest common divisor",
            "What number comes next",
            "On an island",
            "Write a PostgreSQL query",
        ];
        for start in starts {
            let count = problems
                .iter()
                .filter(|p| p.text.starts_with(start))
                .count();
            assert!(count >= 10, "{start}: {count}");
        }
        let ages = problems
            .iter()
            .filter(|p| p.text.contains("How old is each"))
            .count();
        assert!(ages >= 40, "ages: {ages}");
    }

    #[test]
    fn no_unfilled_placeholders() {
        for problem in generate() {
            for slot in ["{n}", "{k}", "{x}", "{lang}", "{task}", "{year}"] {
                assert!(!problem.text.contains(slot), "{}", problem.text);
            }
        }
    }
}
