//! The ID types that Smile ID documents per country (the reference table), used to
//! warn about a configured pair the provider may not know, and to build examples.

use crate::model::{Country, IdType};

/// Current KYC types per country, as the provider's reference table lists them.
pub const CURRENT: &[(&str, &[&str])] = &[
    ("CI", &["NATIONAL_ID_NO_PHOTO", "RESIDENT_ID_NO_PHOTO"]),
    ("GH", &["GHANA_CARD", "GHANA_CARD_NO_PHOTO", "PASSPORT", "VOTER_ID"]),
    ("KE", &["ALIEN_CARD", "KRA_PIN", "NATIONAL_ID", "NATIONAL_ID_NO_PHOTO", "PASSPORT", "TAX_INFORMATION"]),
    ("NG", &["BANK_ACCOUNT", "BVN", "NIN_V2", "NIN_SLIP", "V_NIN", "PHONE_NUMBER", "VOTER_ID"]),
    ("ZA", &["NATIONAL_ID", "NATIONAL_ID_NO_PHOTO", "PHONE_NUMBER", "REFUGEE_ID"]),
    ("UG", &["NATIONAL_ID_NO_PHOTO"]),
    ("ZM", &["BANK_ACCOUNT", "TPIN"]),
    ("ZW", &["NATIONAL_ID_NO_PHOTO"]),
];

/// Older, alias and business (KYB) types the provider has also been seen to accept.
pub const OTHER: &[(&str, &[&str])] = &[
    ("GH", &["SSNIT", "NEW_VOTER_ID", "DRIVERS_LICENSE"]),
    ("KE", &["BUSINESS_REGISTRATION"]),
    (
        "NG",
        &[
            "BVN_MFA",
            "NIN",
            "DRIVERS_LICENSE",
            "TIN",
            "PASSPORT",
            "NATIONAL_ID",
            "BUSINESS_REGISTRATION",
            "BASIC_BUSINESS_REGISTRATION",
            "TAX_INFORMATION",
        ],
    ),
    ("ZA", &["BUSINESS_REGISTRATION"]),
];

/// The English name of a country the reference table covers.
pub fn country_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "CI" => "Côte d'Ivoire",
        "GH" => "Ghana",
        "KE" => "Kenya",
        "NG" => "Nigeria",
        "UG" => "Uganda",
        "ZA" => "South Africa",
        "ZM" => "Zambia",
        "ZW" => "Zimbabwe",
        _ => return None,
    })
}

/// Whether the reference table lists any ID type for this country.
pub fn has_country(country: &Country) -> bool {
    CURRENT.iter().chain(OTHER).any(|(c, _)| *c == country.as_str())
}

/// Whether the reference table lists this ID type for this country.
pub fn is_known(country: &Country, id_type: &IdType) -> bool {
    CURRENT.iter().chain(OTHER).any(|(c, types)| *c == country.as_str() && types.contains(&id_type.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_pair_parses_and_is_known() {
        for (c, types) in CURRENT.iter().chain(OTHER) {
            let country: Country = c.parse().unwrap();
            for t in *types {
                let id: IdType = t.parse().unwrap();
                assert!(is_known(&country, &id));
            }
        }
        assert!(!is_known(&"NG".parse().unwrap(), &"GHANA_CARD".parse().unwrap()));
    }
}
