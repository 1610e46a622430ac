use super::*;
use proptest::prelude::*;

fn toks(s: &str) -> Vec<String> {
    Name::parse(s).tokens
}

#[test]
fn folds_case_accents_punctuation_and_scripts() {
    assert_eq!(toks("Andrej Plenković"), ["andrej", "plenkovic"]);
    assert_eq!(toks("Владимир Путин"), ["vladimir", "putin"]);
    assert_eq!(toks("O'Brien, Patrick"), ["patrick", "obrien"]);
    assert_eq!(toks("习近平"), ["xi", "jin", "ping"]);
    assert_eq!(toks("Μητσοτάκης"), ["mitsotakis"]);
    assert_eq!(toks("ＡＢＣ Ｔｒａｄｉｎｇ"), ["abc", "trading"]);
    assert_eq!(toks("Dr. Ayman al-Zawahiri"), ["ayman", "al", "zawahiri"]);
    assert_eq!(toks("Brigade Forty-Four"), ["brigade", "44"]);
    assert_eq!(toks("Brigade Forty 4"), ["brigade", "44"]);
    assert_eq!(toks("1st International"), ["1", "international"]);
    assert_eq!(toks("Three Percenters"), ["3", "percenters"]);
    assert_eq!(toks("Apollo Fund IX"), ["apollo", "fund", "9"]);
}

#[test]
fn company_forms_are_kept_as_evidence() {
    let a = Name::parse("Goldman Sachs & Co. L.L.C.");
    assert_eq!(a.tokens, ["goldman", "sachs", "company"]);
    assert_eq!(a.forms, [Form::Limited]);
    assert_eq!(Name::parse("ООО Ромашка").forms, [Form::Limited]);
    assert_eq!(
        Name::parse("Tactical Missiles Corporation OJSC").tokens,
        ["tactical", "missiles", "corporation"]
    );
    assert_eq!(
        Name::parse("Sberbank Rossii Public Joint Stock Company").forms,
        [Form::JointStock]
    );
    // `AS` inside a name is a word, at the end a form.
    assert_eq!(toks("Jamal As Sayed Ali"), ["jamal", "as", "sayed", "ali"]);
    assert_eq!(Name::parse("Norsk Hydro AS").forms, [Form::JointStock]);
    assert_eq!(
        Name::parse("Siemens Aktiengesellschaft").tokens,
        ["siemens"]
    );
    assert_eq!(
        Name::parse("ОБЩЕСТВО С ОГРАНИЧЕННОЙ ОТВЕТСТВЕННОСТЬЮ \"БАЙКАЛ\"").forms,
        [Form::Limited]
    );
}

#[test]
fn initials_abbreviations_and_inverted_names() {
    assert_eq!(toks("A.B.C. Company"), ["abc", "company"]);
    assert_eq!(toks("(U.S.A.), J.P. Morgan"), ["jp", "morgan", "usa"]);
    assert_eq!(toks("ABC Co."), ["abc", "company"]);
    assert_eq!(toks("Bank Int’l"), ["bank", "international"]);
    assert_eq!(toks("Frost, William G."), ["william", "g", "frost"]);
    // A letter with a dot of its own is an initial, never a Roman numeral; without one, after
    // the first word, `V` and `II` are numbers (`Apollo Fund IX` above).
    assert_eq!(toks("Путин В. В."), ["putin", "v", "v"]);
    assert_eq!(toks("Putin V."), ["putin", "v"]);
    assert_eq!(toks("Smith, John X."), ["john", "x", "smith"]);
    assert_eq!(toks("Apollo Fund V"), ["apollo", "fund", "5"]);
    assert_eq!(toks("Apollo Fund II."), ["apollo", "fund", "2"]);
    assert_eq!(toks("V Group"), ["v", "group"]);
    // A form after the comma is not a given name, dotted or not.
    let santander = Name::parse("Banco Santander, S.A.");
    assert_eq!(santander.tokens, ["banco", "santander"]);
    assert_eq!(santander.forms, [Form::JointStock]);
    assert_eq!(
        Name::parse("Faberlic Europe Sp. z o.o.").forms,
        [Form::Limited]
    );
    assert_eq!(toks("Acme, Inc., Delaware"), ["acme", "delaware"]);
}

#[test]
fn a_form_and_a_number_is_not_an_empty_name() {
    let n = Name::parse("OOO 1");
    assert_eq!(n.tokens, ["ooo", "1"]);
    assert_eq!(Name::parse("LLC").tokens, ["llc"]);
}

proptest! {
    #[test]
    fn tokens_are_lowercase_ascii_alphanumerics(s in "\\PC{0,40}") {
        for t in Name::parse(&s).tokens {
            prop_assert!(!t.is_empty());
            prop_assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        }
    }

    #[test]
    fn case_and_spacing_do_not_matter(s in "[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,3}") {
        // Not commas: `Surname, Given` is read as an inversion.
        let spaced = s.replace(' ', "  -  ");
        prop_assert_eq!(Name::parse(&s.to_uppercase()), Name::parse(&spaced.to_lowercase()));
    }
}
