use super::*;
use proptest::prelude::*;

fn s(a: &str, b: &str) -> f64 {
    compare(&Name::parse(a), &Name::parse(b)).score
}

#[test]
fn misspelled_reordered_and_transliterated_names_match() {
    assert!(s("Olaf Scholze", "Olaf Scholz") > THRESHOLD);
    assert!(s("Scholz, Olaf", "Olaf Scholz") > 0.99);
    assert!(s("Владимир Путин", "Vladimir Putin") > 0.99);
    assert!(s("Wladimir Putin", "Vladimir Putin") > THRESHOLD);
    assert!(s("SergeiLavrov", "Sergei Lavrov") > THRESHOLD);
    assert!(s("V. Putin", "Vladimir Putin") > THRESHOLD);
    assert!(s("CRYSTALORD LIMITED", "CRYSTALORD LTD") > 0.99);
    assert!(s("MOHAMMAD YAQOUB HAQQANI", "MOHAMMAD YAQOUB") > THRESHOLD);
}

#[test]
fn a_name_in_the_arabic_script_meets_its_latin_spellings_by_consonants() {
    let by = |a: &str, b: &str| compare(&Name::parse(a), &Name::parse(b));
    for (arabic, latin) in [
        ("محمد حسن", "Muhammad Hassan"),
        ("أسامة بن لادن", "Usama bin Laden"),
        ("أيمن الظواهري", "AL-ZAWAHIRI, Ayman"),
        ("حسن روحاني", "Hassan Rouhani"),
        ("عبد الله", "Abdullah"),
        ("معمر القذافي", "Muammar Qaddafi"),
    ] {
        let found = by(arabic, latin);
        assert!(found.score > THRESHOLD, "{arabic} / {latin}: {found:?}");
        assert!(found.by_consonants, "{arabic} / {latin}");
        // Credited less than the same name by letters.
        assert!(found.score < 0.99);
    }
    assert!(s("محمد حسن", "Ahmed Hassan") < THRESHOLD);
    assert!(s("أسامة بن لادن", "Hassan bin Laden") < THRESHOLD);
    // Two Latin names never go by consonants: their vowels tell them apart.
    assert!(!by("Mahmoud Hassan", "Muhammad Hassan").by_consonants);
    assert!(s("Mahmoud Hassan", "Muhammad Hassan") < s("محمد حسن", "Muhammad Hassan"));
    let (_, text) = combine(&by("محمد حسن", "Muhammad Hassan"), "HASSAN, Muhammad", &[]);
    assert!(text.contains("by consonants"), "{text}");
}

#[test]
fn generic_words_alone_do_not_make_a_match() {
    assert!(
        s(
            "International Trading Company",
            "EASTNINE INTERNATIONAL TRADING CO., LTD."
        ) < THRESHOLD
    );
    assert!(s("Global Trading", "Sinopec Global Trading") < THRESHOLD);
    // One distinctive word in common still counts as before; so does the whole name.
    assert!(
        s(
            "Eastnine Trading",
            "EASTNINE INTERNATIONAL TRADING CO., LTD."
        ) > THRESHOLD
    );
    assert!(s("International Trading Company", "International Trading Co.") > 0.99);
}

#[test]
fn a_pair_scores_the_same_in_either_order() {
    // Found by the property below: only one order joined `R D` into `RD`.
    for (a, b) in [("a R d", "A rd d"), ("Jean Claude Juncker", "JC Juncker")] {
        assert_eq!(s(a, b), s(b, a), "{a} / {b}");
    }
}

#[test]
fn different_people_and_companies_do_not() {
    assert!(s("Abdul Latif Noori", "Abdul Latif Mansur") < THRESHOLD);
    assert!(s("Pol Pot", "Pot Pouv") < THRESHOLD);
    assert!(s("Octavian Scholz", "Olaf Scholz") < THRESHOLD);
    assert!(s("Park Joon-hee", "Park Chung-hee") < THRESHOLD);
    assert!(s("Trust 2007-1", "Trust 2007-2") < THRESHOLD);
    assert!(s("OOO 1", "OOO Romashka") < THRESHOLD);
    assert!(s("Acme LLC", "Acme JSC") < s("Acme LLC", "Acme OOO"));
    // Initials keep their order; a patronymic is not a given name.
    assert!(s("C.B.A. Company", "A.B.C. Company") < THRESHOLD);
    assert!(s("Ahmad bin Hasan al-Ubaidi", "Hasan bin Ahmad al-Ubaidi") < THRESHOLD);
    assert!(s("Osama bin Laden", "Usama bin Ladin") > THRESHOLD);
    assert!(
        s(
            "AL BEN ALI, Isa Ben Tarif",
            "Shaikh Isa Bin Tarif Al Bin Ali"
        ) > THRESHOLD
    );
}

#[test]
fn dates_of_birth_and_identifiers_are_evidence() {
    let q = Facts {
        dates_of_birth: vec!["1952-10-07".into()],
        ..Facts::default()
    };
    let exact = Facts {
        dates_of_birth: vec!["07 Oct 1952".into()],
        ..Facts::default()
    };
    let swapped = Facts {
        dates_of_birth: vec!["1952-07-10".into()],
        ..Facts::default()
    };
    let other = Facts {
        dates_of_birth: vec!["1970".into()],
        ..Facts::default()
    };
    assert_eq!(evidence(&q, &exact)[0].effect, 0.1);
    assert_eq!(evidence(&q, &swapped)[0].effect, 0.06);
    assert!(evidence(&q, &other)[0].effect < 0.0);
    let id = |i: &str| Facts {
        identifiers: vec![i.into()],
        ..Facts::default()
    };
    assert!(evidence(&id("IMO 9187629"), &id("imo-9187629"))[0].effect > 0.0);
    assert!(evidence(&id("IMO 9187629"), &id("IMO 9187630")).is_empty());
}

#[test]
fn countries_compare_by_what_they_name() {
    let in_ = |c: &[&str]| Facts {
        countries: c.iter().map(|s| (*s).to_owned()).collect(),
        ..Facts::default()
    };
    let effect = |q: &[&str], c: &[&str]| {
        let e = evidence(&in_(q), &in_(c));
        e.first().map(|e| e.effect)
    };
    // A code, its alpha-3 and an alias name the list's country.
    for code in ["LB", "lbn", "Lebanon", " lebanon "] {
        assert_eq!(effect(&[code], &["Lebanon"]), Some(0.02), "{code}");
    }
    assert_eq!(effect(&["RU"], &["Russia"]), Some(0.02));
    assert_eq!(effect(&["KP"], &["Korea, North"]), Some(0.02));
    // "NO" is Norway, not a substring of "Lebanon".
    assert_eq!(effect(&["NO"], &["Lebanon"]), Some(-0.05));
    // One of several countries is enough; a name neither side can resolve says nothing
    // unless it is the same name.
    assert_eq!(effect(&["SY"], &["Lebanon", "Syria"]), Some(0.02));
    assert_eq!(effect(&["Atlantis"], &["Lebanon"]), None);
    assert_eq!(effect(&["Region: Crimea"], &["region crimea"]), Some(0.02));
}

proptest! {
    #[test]
    fn scores_are_symmetric_bounded_and_one_for_equal_names(
        a in "[A-Za-z]{1,9}( [A-Za-z]{1,9}){0,3}",
        b in "[A-Za-z]{1,9}( [A-Za-z]{1,9}){0,3}",
    ) {
        let x = s(&a, &b);
        prop_assert!((0.0..=1.0).contains(&x));
        prop_assert_eq!(compare(&Name::parse(&a), &Name::parse(&b)), compare(&Name::parse(&b), &Name::parse(&a)));
        prop_assert!(s(&a, &a) > 0.999);
    }

    // Four letters and more: two-letter words such as `AB` or `SA` are legal forms at the
    // end of a name and words elsewhere, which is meant to depend on order.
    #[test]
    fn word_order_does_not_matter(words in proptest::collection::vec("[a-z]{4,9}", 1..5)) {
        let mut rev = words.clone();
        rev.reverse();
        prop_assert!((s(&words.join(" "), &rev.join(" ")) - 1.0).abs() < 1e-9);
    }
}
