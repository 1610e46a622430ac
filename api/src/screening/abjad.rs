//! Names written in an abjad — the Arabic script (Arabic, Persian, Urdu) or Hebrew — which
//! leaves short vowels out.
//!
//! `محمد حسن` is written with the consonants of `Muhammad Hassan` only, so no letter-by-letter
//! transliteration (`any_ascii` gives `mhmd hsn`) comes close to the Latin spellings the SDN
//! list uses: Jaro-Winkler put them at 0. Hebrew is the same (`משה כהן` is `Moshe Cohen`, and
//! `any_ascii` gives `msh khhn`). Two steps close the gap:
//! - `romanize` writes the letters that stand for long vowels (alif, waw and ya inside a word,
//!   ta marbuta, hamza carriers; Hebrew alef, vav and yod inside a word, he at its end) as
//!   vowels rather than as `w`/`y`/`h` or nothing, and splits the Arabic article `ال` off as
//!   `al`, so `أسامة بن لادن` reads `asama bn ladn` and `ולדימיר פוטין` `vldimir putin`;
//! - `skeleton` reduces a Latin token to what both scripts write — its consonants, without the
//!   vowels, without `w`/`y` inside the word (the long vowels `u`/`i`), doubled letters once,
//!   `th`/`dh` as `t`/`d`, and the sounds Arabic lacks as their nearest letter (`p` → `b`,
//!   `v` → `f`) — so that `Usama` and `أسامة` both give `sm`, and `Husayn`, `Hussein` and
//!   `حسين` all give `hsn`.
//!
//! The scorer compares two names by their skeletons only when exactly one of them is written in
//! an abjad (`score::compare`), and credits such a match a little less than one by letters: a
//! skeleton cannot tell names apart by their vowels (`Muhammad` and `Mahmoud` are both
//! `mhmd`). Two Latin names keep every letter they have.

/// Whether `c` is a letter of the Arabic script's blocks (Arabic, its supplement and extended
/// block, and the presentation forms NFKC folds into them).
fn is_arabic_letter(c: char) -> bool {
    matches!(c as u32, 0x0620..=0x063F | 0x0641..=0x064A | 0x066E..=0x06D3 | 0x06D5 | 0x06EE..=0x06EF
        | 0x06FA..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF)
}

/// Whether `c` is a Hebrew letter (final forms and the Yiddish ligatures included; NFKC folds
/// the presentation forms into them).
fn is_hebrew_letter(c: char) -> bool {
    matches!(c as u32, 0x05D0..=0x05EA | 0x05EF..=0x05F2)
}

/// Whether `c` is a letter of either abjad.
fn is_abjad_letter(c: char) -> bool {
    is_arabic_letter(c) || is_hebrew_letter(c)
}

/// Whether a name is written in an abjad: more of its letters are Arabic or Hebrew than not.
pub fn written_in(raw: &str) -> bool {
    let (mut abjad, mut other) = (0usize, 0usize);
    for c in raw.chars().filter(|c| c.is_alphabetic()) {
        if is_abjad_letter(c) {
            abjad += 1;
        } else {
            other += 1;
        }
    }
    abjad > other
}

/// One letter in Latin; `initial` when it starts a word (after the article too), where waw
/// and ya are the consonants `w` and `y`, not the vowels `u` and `i`.
fn letter(c: char, initial: bool) -> Option<&'static str> {
    Some(match c {
        // Alif and its forms, alif maqsura, ta marbuta: vowels.
        'ا' | 'أ' | 'آ' | 'ٱ' | 'ى' | 'ة' | 'ۃ' => "a",
        'إ' => "i",
        'ؤ' => "u",
        'ئ' => "i",
        // Hamza and ayn, which Latin spellings mostly leave out (`Abd`, `Ali`).
        'ء' | 'ع' => "",
        'و' if initial => "w",
        'و' => "u",
        'ي' | 'ی' | 'ې' if initial => "y",
        'ي' | 'ی' | 'ې' => "i",
        'ے' => "e",
        'ب' => "b",
        'پ' => "p",
        'ت' | 'ط' | 'ٹ' => "t",
        'ث' => "th",
        'ج' => "j",
        'چ' => "ch",
        'ح' | 'ه' | 'ہ' | 'ھ' => "h",
        'خ' => "kh",
        'د' | 'ض' | 'ڈ' => "d",
        'ذ' => "dh",
        'ر' | 'ڑ' => "r",
        'ز' | 'ظ' => "z",
        'ژ' => "zh",
        'س' | 'ص' => "s",
        'ش' => "sh",
        'غ' => "gh",
        'ف' => "f",
        'ق' => "q",
        'ك' | 'ک' => "k",
        'گ' => "g",
        'ل' => "l",
        'م' => "m",
        'ن' | 'ں' => "n",
        _ => return None,
    })
}

/// The Hebrew letter starting `rest` (the name's characters from it on, marks left out) in
/// Latin, and how many characters it took: a geresh after `ג`, `ז` or `צ` (as in `ג׳ורג׳`,
/// George, often typed as an apostrophe) makes them `j`, `zh` and `ch`, and a doubled vav or
/// yod inside a word is the consonant. `ב`, `כ` and `פ` are `v`, `kh` and `f` after a vowel
/// letter or at the word's end (`אברהם` Avraham, `יעקב` Yaakov), where unpointed text would
/// mark nothing else.
fn hebrew(rest: &[char], initial: bool, after_vowel: bool) -> Option<(&'static str, usize)> {
    let next = rest.get(1).copied();
    let geresh = matches!(next, Some('\u{05F3}' | '\'' | '\u{2019}'));
    let last = next.is_none_or(|n| !is_hebrew_letter(n));
    let soft = !initial && (after_vowel || last);
    Some(match rest[0] {
        'ג' if geresh => ("j", 2),
        'ז' if geresh => ("zh", 2),
        'צ' | 'ץ' if geresh => ("ch", 2),
        'ו' if next == Some('ו') => ("v", 2),
        'ו' if initial => ("v", 1),
        'ו' => ("u", 1),
        'י' if next == Some('י') && !initial => ("y", 2),
        'י' if initial => ("y", 1),
        'י' => ("i", 1),
        'א' => ("a", 1),
        // Ayin, which Latin spellings mostly leave out or write as the vowel (`Yaakov`).
        'ע' => ("", 1),
        'ה' if last && !initial => ("a", 1),
        'ה' | 'ח' => ("h", 1),
        'ב' if soft => ("v", 1),
        'ב' => ("b", 1),
        'כ' if soft => ("kh", 1),
        'כ' | 'ק' => ("k", 1),
        'ך' => ("kh", 1),
        'פ' if soft => ("f", 1),
        'פ' => ("p", 1),
        'ף' => ("f", 1),
        'ג' => ("g", 1),
        'ד' => ("d", 1),
        'ז' => ("z", 1),
        'ט' | 'ת' => ("t", 1),
        'ל' => ("l", 1),
        'מ' | 'ם' => ("m", 1),
        'נ' | 'ן' => ("n", 1),
        'ס' => ("s", 1),
        'צ' | 'ץ' => ("ts", 1),
        'ר' => ("r", 1),
        'ש' => ("sh", 1),
        'װ' => ("v", 1),
        'ױ' => ("oi", 1),
        'ײ' => ("ei", 1),
        _ => return None,
    })
}

/// Hebrew's vowel points and cantillation marks, which sit inside a word (the maqaf, the
/// paseq, sof pasuq and nun hafukha are punctuation, and stay).
fn is_hebrew_mark(c: char) -> bool {
    matches!(c as u32, 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7)
}

/// The abjad words of `raw` in Latin letters, long vowels as vowels, the Arabic article split
/// off; everything else (spaces, digits, other scripts) as it was, for `normalize::fold`.
pub fn romanize(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().filter(|c| !is_hebrew_mark(*c)).collect();
    let mut out = String::with_capacity(raw.len() * 2);
    let mut initial = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_hebrew_letter(c) {
            let after_vowel = out.ends_with(['a', 'i', 'u']);
            match hebrew(&chars[i..], initial, after_vowel) {
                Some((latin, took)) => {
                    out.push_str(latin);
                    i += took;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
            initial = false;
            continue;
        }
        if !is_arabic_letter(c) {
            // Vowel marks and the tatweel sit inside a word; the zero-width non-joiner Persian
            // writes between a word's parts joins them. A geresh no letter took is a mark too.
            let inside = matches!(
                c as u32,
                0x064B..=0x065F | 0x0670 | 0x0640 | 0x200C | 0x05F3
            );
            if !inside {
                out.push(c);
                initial = true;
            }
            i += 1;
            continue;
        }
        // `ال` + at least two more letters is the article, except in `الله`, which Latin
        // spellings write as one word (`Abdullah`, `Abd Allah`).
        let word: Vec<char> = chars[i..]
            .iter()
            .copied()
            .take_while(|c| is_arabic_letter(*c))
            .collect();
        if initial && word.len() >= 4 && word[..2] == ['ا', 'ل'] && word != ['ا', 'ل', 'ل', 'ه']
        {
            out.push_str("al ");
            i += 2;
            continue;
        }
        match letter(c, initial) {
            Some(latin) => out.push_str(latin),
            None => out.push(c),
        }
        initial = false;
        i += 1;
    }
    out
}

/// A folded Latin token's consonant skeleton (see the module's comment). Digits are kept; a
/// token of vowels only gives an empty skeleton.
pub fn skeleton(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    for (i, b) in bytes.iter().enumerate() {
        let mapped: &str = match b {
            b'a' | b'e' | b'i' | b'o' | b'u' => continue,
            b'w' | b'y' if i > 0 => continue,
            // `th` and `dh` spell `ث` and `ذ`, which Latin spellings also write `t`, `d`, `s`
            // or `z` (`Qadhafi`, `Qaddafi`): the plain letter is what they share.
            // After the skeleton's `t` or `d`, not the word's: the vowels between do not
            // count (`Taha` and `طه` both `t`), and a skeleton stays its own skeleton.
            b'h' if out.ends_with(['t', 'd']) => continue,
            b'p' => "b",
            b'v' => "f",
            b'q' => "k",
            // `ch` is a sound of its own (Persian `چ`); `c` alone is `k`.
            b'c' if bytes.get(i + 1) != Some(&b'h') => "k",
            b'x' => "ks",
            _ => std::str::from_utf8(std::slice::from_ref(b)).unwrap_or_default(),
        };
        for c in mapped.chars() {
            // A doubled letter is written once (the shadda); digits are a number's own.
            if !(c.is_ascii_alphabetic() && out.ends_with(c)) {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_vowels_are_vowels_and_the_article_is_a_word() {
        assert_eq!(romanize("محمد حسن"), "mhmd hsn");
        assert_eq!(romanize("أسامة بن لادن"), "asama bn ladn");
        assert_eq!(romanize("أيمن الظواهري"), "aimn al zuahri");
        assert_eq!(romanize("الوليد"), "al wlid");
        assert_eq!(romanize("عبد الله"), "bd allh");
        assert_eq!(romanize("مسعود پزشک\u{200C}فر"), "msud pzshkfr");
        assert_eq!(romanize("Ali 7"), "Ali 7");
    }

    #[test]
    fn both_scripts_give_one_skeleton() {
        let same = |latin: &str, arabic: &str| {
            let l: Vec<String> = latin.split(' ').map(skeleton).collect();
            let a: Vec<String> = romanize(arabic).split(' ').map(skeleton).collect();
            assert_eq!(l, a, "{latin} / {arabic}");
        };
        same("muhammad hassan", "محمد حسن");
        same("usama bin laden", "أسامة بن لادن");
        same("osama bin laden", "أسامة بن لادن");
        same("husayn", "حسين");
        same("hussein", "حسين");
        same("ali khamenei", "علي خامنئي");
        same("yusuf", "يوسف");
        same("walid", "وليد");
        same("fernando perez", "فرناندو بيريز");
        same("ayman al zawahiri", "أيمن الظواهري");
        same("muammar qadhafi", "معمر قذافي");
        same("muammar qaddafi", "معمر قذافي");
        same("taha", "طه");
        same("thabit", "ثابت");
        same("vladimir putin", "ולדימיר פוטין");
        same("moshe cohen", "משה כהן");
        same("binyamin netanyahu", "בנימין נתניהו");
        same("avraham goldberg", "אברהם גולדברג");
        same("yaakov", "יעקב");
        same("yosef", "יוסף");
        same("zhukov", "ז׳וקוב");
        same("zhukov", "ז'וקוב");
        same("moshe", "מֹשֶׁה");
    }

    #[test]
    fn hebrew_reads_its_vowel_letters_as_vowels() {
        assert_eq!(romanize("משה כהן"), "msha khn");
        assert_eq!(romanize("אברהם"), "avrhm");
        assert_eq!(romanize("דוויד"), "dvid");
        assert_eq!(romanize("ג׳ורג׳"), "jurj");
        assert_eq!(romanize("דוד בן גוריון"), "dud bn guriun");
    }

    #[test]
    fn only_names_mostly_in_the_arabic_script_are_written_in_it() {
        assert!(written_in("محمد حسن"));
        assert!(written_in("شركة ABC للتجارة"));
        assert!(!written_in("Muhammad Hassan"));
        assert!(!written_in("Владимир"));
        assert!(!written_in("123"));
        assert!(written_in("משה כהן"));
        assert!(written_in("חברת ABC בע״מ"));
    }

    /// Names in Hebrew against their Latin spellings, scored as screening scores them: 15 of
    /// the 17 pairs written for this test match (letter by letter, none did), and no pair of
    /// different names does. The two missed are in the comment below.
    #[test]
    fn hebrew_names_meet_their_latin_spellings_and_no_others() {
        use crate::screening::normalize::Name;
        use crate::screening::score::{THRESHOLD, compare};
        let score = |a: &str, b: &str| compare(&Name::parse(a), &Name::parse(b)).score;
        // Missed: `נפתלי בנט` / `Naftali Bennett` (unpointed `פ` after a consonant reads `p`,
        // as in `Lapid`) and `ג׳ורג׳ בוש` / `George Bush` (the geresh's `j` against `g`).
        for (hebrew, latin) in [
            ("ולדימיר פוטין", "Vladimir Putin"),
            ("בנימין נתניהו", "Binyamin Netanyahu"),
            ("בנימין נתניהו", "Benjamin Netanyahu"),
            ("משה כהן", "Moshe Cohen"),
            ("יוסף לוי", "Yosef Levi"),
            ("דוד בן גוריון", "David Ben Gurion"),
            ("אברהם גולדברג", "Avraham Goldberg"),
            ("שמעון פרס", "Shimon Peres"),
            ("יצחק רבין", "Yitzhak Rabin"),
            ("אריאל שרון", "Ariel Sharon"),
            ("גולדה מאיר", "Golda Meir"),
            ("מנחם בגין", "Menachem Begin"),
            ("אהוד ברק", "Ehud Barak"),
            ("יאיר לפיד", "Yair Lapid"),
            ("ארקדי גאידמק", "Arcadi Gaydamak"),
        ] {
            let s = score(hebrew, latin);
            assert!(s >= THRESHOLD, "{hebrew} / {latin}: {s:.3}");
            assert!(
                s < 1.0,
                "{hebrew} / {latin}: credited below a match by letters"
            );
        }
        for (hebrew, latin) in [
            ("משה כהן", "Moshe Levi"),
            ("יוסף לוי", "Yosef Cohen"),
            ("שמעון פרס", "Shimon Levi"),
            ("אריאל שרון", "Ariel Sharabi"),
            ("יצחק רבין", "Yitzhak Shamir"),
            ("בנימין נתניהו", "Benny Gantz"),
            ("גולדה מאיר", "Golda Mabovitch"),
            ("אהוד ברק", "Ehud Olmert"),
            ("נפתלי בנט", "Naftali Herz"),
            ("יאיר לפיד", "Yair Golan"),
            ("מנחם בגין", "Menachem Mendel"),
        ] {
            let s = score(hebrew, latin);
            assert!(s < THRESHOLD, "{hebrew} / {latin}: {s:.3}");
        }
    }

    proptest! {
        #[test]
        fn any_abjad_text_gives_ascii_tokens_and_skeletons(
            s in "[\u{0590}-\u{06FF}\u{0750}-\u{077F}\u{FB1D}-\u{FDFF}\u{FE70}-\u{FEFF} '\u{200C}]{0,40}"
        ) {
            let name = crate::screening::normalize::Name::parse(&s);
            let consonants = name.consonants();
            for t in name.tokens.iter().chain(name.abjad.iter().flatten()).chain(&consonants.tokens) {
                prop_assert!(!t.is_empty());
                prop_assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{t:?}");
            }
        }

        #[test]
        fn a_skeleton_is_its_own_skeleton_without_vowels(t in "[a-z0-9]{0,12}") {
            let s = skeleton(&t);
            prop_assert!(!s.bytes().any(|b| b"aeiou".contains(&b)));
            prop_assert_eq!(skeleton(&s), s.clone());
        }
    }
}
