//! A buggy: the fields of the buggy race project's editor, and the rules a submitted form
//! must follow before it becomes one ("parse, don't validate": a [`Buggy`] that exists is
//! valid; only [`BuggyForm`] holds raw text).

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// Fewest wheels a buggy may have.
pub const MIN_WHEELS: u32 = 4;
/// Most wheels a buggy may have.
pub const MAX_WHEELS: u32 = 100;
/// Most tyres a buggy may carry (spares included).
pub const MAX_TYRES: u32 = 400;
/// Most units of power a buggy may carry.
pub const MAX_POWER_UNITS: u32 = 100;

/// A fixed list of choices, shown as a `<select>` and stored as its value.
macro_rules! choices {
    (
        $(#[$meta:meta])*
        $name:ident (default $default:ident) {
            $($variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )+
        }

        impl $name {
            /// Every choice, in the order the form lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The form and JSON value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The choice whose value is exactly `value`.
            pub fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|c| c.as_str() == value)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

choices! {
    /// A flag colour.
    Color (default White) {
        White => "white",
        Black => "black",
        Red => "red",
        Orange => "orange",
        Yellow => "yellow",
        Green => "green",
        Blue => "blue",
        Purple => "purple",
        Pink => "pink",
        Grey => "grey",
    }
}

choices! {
    /// The pattern on the flag.
    FlagPattern (default Plain) {
        Plain => "plain",
        VStripe => "vstripe",
        HStripe => "hstripe",
        DStripe => "dstripe",
        Checker => "checker",
        Spot => "spot",
    }
}

choices! {
    /// What drives the buggy.
    PowerType (default Petrol) {
        Petrol => "petrol",
        Fusion => "fusion",
        Steam => "steam",
        Bio => "bio",
        Electric => "electric",
        Rocket => "rocket",
        Hamster => "hamster",
        Thermo => "thermo",
        Solar => "solar",
        Wind => "wind",
    }
}

choices! {
    /// The kind of tyres.
    Tyres (default Knobbly) {
        Knobbly => "knobbly",
        Slick => "slick",
        Steelband => "steelband",
        Reactive => "reactive",
        Maglev => "maglev",
    }
}

choices! {
    /// The armour plating.
    Armour (default NoArmour) {
        NoArmour => "none",
        Wood => "wood",
        Aluminium => "aluminium",
        ThinSteel => "thinsteel",
        ThickSteel => "thicksteel",
        Titanium => "titanium",
    }
}

choices! {
    /// How the buggy races.
    Algo (default Steady) {
        Defensive => "defensive",
        Steady => "steady",
        Offensive => "offensive",
        TitForTat => "titfortat",
        Random => "random",
        Buggy => "buggy",
    }
}

/// A valid buggy. The [`Default`] is the buggy every user starts with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Buggy {
    /// Number of wheels: even, [`MIN_WHEELS`] to [`MAX_WHEELS`].
    pub qty_wheels: u32,
    /// Kind of tyres.
    pub tyres: Tyres,
    /// Number of tyres: at least one per wheel, at most [`MAX_TYRES`].
    pub qty_tyres: u32,
    /// What drives it.
    pub power_type: PowerType,
    /// Units of power: 1 to [`MAX_POWER_UNITS`].
    pub power_units: u32,
    /// The flag's main colour.
    pub flag_color: Color,
    /// The flag's pattern.
    pub flag_pattern: FlagPattern,
    /// The flag's second colour: must differ from the main one unless the flag is plain.
    pub flag_color_secondary: Color,
    /// Armour.
    pub armour: Armour,
    /// Race strategy.
    pub algo: Algo,
    /// Whether it is fireproofed.
    pub fireproof: bool,
}

impl Default for Buggy {
    fn default() -> Self {
        Self {
            qty_wheels: MIN_WHEELS,
            tyres: Tyres::default(),
            qty_tyres: MIN_WHEELS,
            power_type: PowerType::default(),
            power_units: 1,
            flag_color: Color::White,
            flag_pattern: FlagPattern::default(),
            flag_color_secondary: Color::Black,
            armour: Armour::default(),
            algo: Algo::default(),
            fireproof: false,
        }
    }
}

/// The buggy form as submitted: raw text, to be checked by [`BuggyForm::parse`] and shown
/// again (with its errors) when it fails.
///
/// Only these fields are read; anything else in the body (a `user_id`, an `owner`) is
/// ignored: whose buggy a form changes comes from the authenticated user, never from the
/// request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BuggyForm {
    /// Number of wheels.
    pub qty_wheels: String,
    /// Kind of tyres.
    pub tyres: String,
    /// Number of tyres.
    pub qty_tyres: String,
    /// Power type.
    pub power_type: String,
    /// Units of power.
    pub power_units: String,
    /// Flag colour.
    pub flag_color: String,
    /// Flag pattern.
    pub flag_pattern: String,
    /// Second flag colour.
    pub flag_color_secondary: String,
    /// Armour.
    pub armour: String,
    /// Race strategy.
    pub algo: String,
    /// The checkbox: present (any value) when ticked.
    pub fireproof: Option<String>,
}

/// One field's problem, as shown next to it in the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The form field's name.
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<&Buggy> for BuggyForm {
    fn from(b: &Buggy) -> Self {
        Self {
            qty_wheels: b.qty_wheels.to_string(),
            tyres: b.tyres.as_str().to_owned(),
            qty_tyres: b.qty_tyres.to_string(),
            power_type: b.power_type.as_str().to_owned(),
            power_units: b.power_units.to_string(),
            flag_color: b.flag_color.as_str().to_owned(),
            flag_pattern: b.flag_pattern.as_str().to_owned(),
            flag_color_secondary: b.flag_color_secondary.as_str().to_owned(),
            armour: b.armour.as_str().to_owned(),
            algo: b.algo.as_str().to_owned(),
            fireproof: b.fireproof.then(|| "on".to_owned()),
        }
    }
}

/// Collects field errors while a form is parsed, so that every problem is reported at
/// once rather than one per submission.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    fn choice<T>(
        &mut self,
        field: &'static str,
        label: &str,
        value: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let parsed = parse(value);
        if parsed.is_none() {
            self.add(field, format!("Choose {label} from the list."));
        }
        parsed
    }

    /// A whole number in `min..=max`.
    fn number(
        &mut self,
        field: &'static str,
        label: &str,
        value: &str,
        min: u32,
        max: u32,
    ) -> Option<u32> {
        let value = value.trim();
        let parsed = if value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u32>().ok()
        } else {
            None
        };
        match parsed {
            None if value.is_empty() => self.add(field, format!("{label} is required.")),
            None if !value.bytes().all(|b| b.is_ascii_digit()) => {
                self.add(field, format!("{label} must be a whole number."));
            }
            Some(n) if n < min => self.add(field, format!("{label} must be at least {min}.")),
            Some(n) if n <= max => return Some(n),
            _ => self.add(field, format!("{label} must be at most {max}.")),
        }
        None
    }
}

impl BuggyForm {
    /// Check the form and build the buggy it describes.
    ///
    /// # Errors
    /// Every field that breaks a rule, in form order, with a message for people.
    ///
    /// # Examples
    /// ```
    /// use buggy_race::buggy::{Buggy, BuggyForm};
    ///
    /// let mut form = BuggyForm::from(&Buggy::default());
    /// form.qty_wheels = "6".to_owned();
    /// form.qty_tyres = "6".to_owned();
    /// assert_eq!(form.parse().unwrap().qty_wheels, 6);
    ///
    /// form.qty_wheels = "5".to_owned();
    /// let errors = form.parse().unwrap_err();
    /// assert_eq!(errors[0].field, "qty_wheels");
    /// assert_eq!(errors[0].message, "Number of wheels must be even.");
    /// ```
    pub fn parse(&self) -> Result<Buggy, Vec<FieldError>> {
        let mut p = Problems::default();
        let wheels = p
            .number(
                "qty_wheels",
                "Number of wheels",
                &self.qty_wheels,
                MIN_WHEELS,
                MAX_WHEELS,
            )
            .filter(|n| {
                let even = n % 2 == 0;
                if !even {
                    p.add("qty_wheels", "Number of wheels must be even.");
                }
                even
            });
        let tyres = p.choice("tyres", "a tyre type", &self.tyres, Tyres::parse);
        let qty_tyres = p.number(
            "qty_tyres",
            "Number of tyres",
            &self.qty_tyres,
            MIN_WHEELS,
            MAX_TYRES,
        );
        let qty_tyres = match (qty_tyres, wheels) {
            (Some(t), Some(w)) if t < w => {
                p.add(
                    "qty_tyres",
                    format!("Number of tyres must be at least the number of wheels ({w})."),
                );
                None
            }
            (t, _) => t,
        };
        let power_type = p.choice(
            "power_type",
            "a power type",
            &self.power_type,
            PowerType::parse,
        );
        let power_units = p.number(
            "power_units",
            "Units of power",
            &self.power_units,
            1,
            MAX_POWER_UNITS,
        );
        let flag_color = p.choice(
            "flag_color",
            "a flag colour",
            &self.flag_color,
            Color::parse,
        );
        let flag_pattern = p.choice(
            "flag_pattern",
            "a flag pattern",
            &self.flag_pattern,
            FlagPattern::parse,
        );
        let secondary = p.choice(
            "flag_color_secondary",
            "a secondary flag colour",
            &self.flag_color_secondary,
            Color::parse,
        );
        if let (Some(main), Some(pattern), Some(second)) = (flag_color, flag_pattern, secondary)
            && pattern != FlagPattern::Plain
            && main == second
        {
            p.add(
                "flag_color_secondary",
                "A patterned flag needs a secondary colour that differs from the main colour.",
            );
        }
        let armour = p.choice("armour", "the armour", &self.armour, Armour::parse);
        let algo = p.choice("algo", "a race strategy", &self.algo, Algo::parse);

        match (
            wheels,
            tyres,
            qty_tyres,
            power_type,
            power_units,
            flag_color,
            flag_pattern,
            secondary,
            armour,
            algo,
        ) {
            (
                Some(qty_wheels),
                Some(tyres),
                Some(qty_tyres),
                Some(power_type),
                Some(power_units),
                Some(flag_color),
                Some(flag_pattern),
                Some(flag_color_secondary),
                Some(armour),
                Some(algo),
            ) if p.0.is_empty() => Ok(Buggy {
                qty_wheels,
                tyres,
                qty_tyres,
                power_type,
                power_units,
                flag_color,
                flag_pattern,
                flag_color_secondary,
                armour,
                algo,
                fireproof: self.fireproof.is_some(),
            }),
            _ => Err(p.0),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn form() -> BuggyForm {
        BuggyForm::from(&Buggy::default())
    }

    fn errors(f: &BuggyForm) -> Vec<(&'static str, String)> {
        f.parse()
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn default_round_trips() {
        assert_eq!(form().parse(), Ok(Buggy::default()));
        let b = Buggy {
            qty_wheels: 8,
            qty_tyres: 10,
            power_type: PowerType::Hamster,
            power_units: 3,
            flag_pattern: FlagPattern::Checker,
            flag_color: Color::Red,
            flag_color_secondary: Color::Yellow,
            armour: Armour::Titanium,
            algo: Algo::TitForTat,
            tyres: Tyres::Maglev,
            fireproof: true,
        };
        assert_eq!(BuggyForm::from(&b).parse(), Ok(b));
    }

    #[test]
    fn wheels() {
        for (v, msg) in [
            ("", "Number of wheels is required."),
            ("  ", "Number of wheels is required."),
            ("four", "Number of wheels must be a whole number."),
            ("-4", "Number of wheels must be a whole number."),
            ("4.0", "Number of wheels must be a whole number."),
            ("+4", "Number of wheels must be a whole number."),
            ("2", "Number of wheels must be at least 4."),
            ("0", "Number of wheels must be at least 4."),
            ("5", "Number of wheels must be even."),
            ("102", "Number of wheels must be at most 100."),
            (
                "99999999999999999999",
                "Number of wheels must be at most 100.",
            ),
        ] {
            let mut f = form();
            f.qty_wheels = v.to_owned();
            assert_eq!(errors(&f), vec![("qty_wheels", msg.to_owned())], "{v:?}");
        }
        let mut f = form();
        f.qty_wheels = " 6 ".to_owned();
        f.qty_tyres = "6".to_owned();
        assert_eq!(f.parse().unwrap().qty_wheels, 6);
    }

    #[test]
    fn tyres_cover_the_wheels() {
        let mut f = form();
        f.qty_wheels = "6".to_owned();
        f.qty_tyres = "4".to_owned();
        assert_eq!(
            errors(&f),
            vec![(
                "qty_tyres",
                "Number of tyres must be at least the number of wheels (6).".to_owned()
            )]
        );
        f.qty_tyres = "401".to_owned();
        assert_eq!(errors(&f)[0].1, "Number of tyres must be at most 400.");
    }

    #[test]
    fn power_units() {
        let mut f = form();
        f.power_units = "0".to_owned();
        assert_eq!(errors(&f)[0].1, "Units of power must be at least 1.");
        f.power_units = "101".to_owned();
        assert_eq!(errors(&f)[0].1, "Units of power must be at most 100.");
    }

    #[test]
    fn choices_come_from_the_lists() {
        let mut f = form();
        f.flag_color = "White".to_owned();
        f.power_type = "nuclear".to_owned();
        f.tyres = String::new();
        f.armour = "none ".to_owned();
        f.algo = "<script>".to_owned();
        f.flag_pattern = "tartan".to_owned();
        f.flag_color_secondary = "beige".to_owned();
        assert_eq!(
            errors(&f).into_iter().map(|e| e.0).collect::<Vec<_>>(),
            [
                "tyres",
                "power_type",
                "flag_color",
                "flag_pattern",
                "flag_color_secondary",
                "armour",
                "algo"
            ]
        );
        assert_eq!(errors(&f)[0].1, "Choose a tyre type from the list.");
    }

    #[test]
    fn patterned_flags_need_two_colours() {
        let mut f = form();
        f.flag_color = "red".to_owned();
        f.flag_color_secondary = "red".to_owned();
        assert!(f.parse().is_ok(), "a plain flag may repeat its colour");
        f.flag_pattern = "spot".to_owned();
        assert_eq!(errors(&f)[0].0, "flag_color_secondary");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut f = form();
        f.qty_wheels = "3".to_owned();
        f.power_units = "x".to_owned();
        f.algo = "fast".to_owned();
        assert_eq!(
            errors(&f).into_iter().map(|e| e.0).collect::<Vec<_>>(),
            ["qty_wheels", "power_units", "algo"]
        );
    }

    #[test]
    fn fireproof_is_a_checkbox() {
        let mut f = form();
        f.fireproof = Some(String::new());
        assert!(f.parse().unwrap().fireproof);
        f.fireproof = None;
        assert!(!f.parse().unwrap().fireproof);
    }

    #[test]
    fn json_uses_the_form_values() {
        let json = serde_json::to_value(Buggy::default()).unwrap();
        assert_eq!(json["power_type"], "petrol");
        assert_eq!(json["qty_wheels"], 4);
        assert_eq!(json["flag_color"], "white");
    }

    #[test]
    fn lists_round_trip() {
        for c in Color::ALL {
            assert_eq!(Color::parse(c.as_str()), Some(*c));
        }
        for c in PowerType::ALL {
            assert_eq!(PowerType::parse(&c.to_string()), Some(*c));
        }
    }
}
