//! `/badge/{country}/{id_type}.svg`: a pair's state and its uptime over 7 days as a flat
//! badge in the style of shields.io, for READMEs, wikis and dashboards:
//! `NG BVN | online · 99.2% 7d`.

use chrono::TimeDelta;
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Response, StatusCode};

use super::Site;
use super::feed::xml_escape;
use super::http::{Body, text};
use crate::history::timeline::uptime_of;
use crate::model::{AuthorityState, Country, IdType, Target};

/// The badges' content type.
pub const SVG: &str = "image/svg+xml";
/// How long a badge may be cached: a minute, well within a poll's interval.
pub const CACHE: &str = "public, max-age=60";
/// The path prefix.
pub const PREFIX: &str = "/badge/";
/// The grey of the left half.
const LABEL_COLOUR: &str = "#555";
/// The range of the uptime shown.
const UPTIME_RANGE: TimeDelta = TimeDelta::days(7);

/// A state's colour: shields' brightgreen, orange, red and lightgrey.
pub fn colour(s: AuthorityState) -> &'static str {
    match s {
        AuthorityState::Online => "#4c1",
        AuthorityState::Interruption => "#fe7d37",
        AuthorityState::Offline => "#e05d44",
        AuthorityState::Unknown => "#9f9f9f",
    }
}

/// The pair a badge path names: `/badge/NG/BVN.svg` (letters in either case); none for any
/// other path.
pub fn parse_path(path: &str) -> Option<Target> {
    let (country, id_type) = path.strip_prefix(PREFIX)?.strip_suffix(".svg")?.split_once('/')?;
    let country: Country = country.to_ascii_uppercase().parse().ok()?;
    let id_type: IdType = id_type.to_ascii_uppercase().parse().ok()?;
    Some(Target::new(country, id_type))
}

/// An uptime ratio as the badge shows it: to a tenth of a percent, rounded as the status
/// page rounds its uptime, but `100%` only when it was (99.96% shows as 99.9%).
pub fn uptime_text(ratio: f64) -> String {
    let p = ratio.clamp(0.0, 1.0) * 100.0;
    if p >= 100.0 {
        "100%".to_owned()
    } else if p >= 99.95 {
        "99.9%".to_owned()
    } else {
        format!("{p:.1}%")
    }
}

/// `GET /badge/{country}/{id_type}.svg`: the pair's badge; 404 with a grey "not watched"
/// badge for a pair that is not watched or a path that names no pair.
pub(super) fn response(site: &Site, path: &str) -> Response<Body> {
    let now = site.clock.now();
    let watched = parse_path(path).and_then(|t| Some((site.store.pair_now(&t, now)?, t)));
    let (status, svg) = match (watched, parse_path(path)) {
        (Some((pair, target)), _) => {
            let ratio = site.store.segments(&target, now - UPTIME_RANGE, now).and_then(|s| uptime_of(&s).ratio);
            let value = match ratio {
                Some(r) => format!("{} · {} 7d", pair.state, uptime_text(r)),
                None => pair.state.to_string(),
            };
            let title = match ratio {
                Some(r) => format!("{}: {}, {} uptime over 7 days", name(&target), pair.state, uptime_text(r)),
                None => format!("{}: {}, no uptime over 7 days yet", name(&target), pair.state),
            };
            (StatusCode::OK, svg(&name(&target), &value, colour(pair.state), &title))
        }
        (None, Some(target)) => {
            let title = format!("{}: not watched by this exporter", name(&target));
            (StatusCode::NOT_FOUND, svg(&name(&target), "not watched", colour(AuthorityState::Unknown), &title))
        }
        (None, None) => {
            let title = "not a pair: the address is /badge/COUNTRY/ID_TYPE.svg, such as /badge/NG/BVN.svg";
            (StatusCode::NOT_FOUND, svg("ID authority", "not watched", colour(AuthorityState::Unknown), title))
        }
    };
    let mut resp = text(status, SVG, svg);
    let headers = resp.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Opened on its own, the badge is a document: it runs nothing and loads nothing.
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'none'"));
    resp
}

fn name(t: &Target) -> String {
    format!("{} {}", t.country, t.id_type)
}

/// The width of `c` in Verdana at 11 px, as shields measures its text (printable ASCII
/// measured; anything else taken as a wide letter).
fn char_width(c: char) -> f64 {
    const ASCII: [f64; 95] = [
        3.87, 4.33, 5.05, 9.0, 6.99, 11.84, 7.99, 2.95, 5.0, 5.0, 6.99, 9.0, 4.0, 5.0, 4.0, 5.0, // ' ' to '/'
        6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, // '0' to '9'
        5.0, 5.0, 9.0, 9.0, 9.0, 6.0, 11.0, // ':' to '@'
        7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.63, 5.0, 7.62, 6.12, 9.27, // 'A' to 'M'
        8.23, 8.66, 6.63, 8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.88, 7.54, 6.77, 7.54, // 'N' to 'Z'
        5.0, 5.0, 5.0, 9.0, 6.99, 6.99, // '[' to '`'
        6.61, 6.85, 5.73, 6.85, 6.55, 3.87, 6.85, 6.96, 3.02, 3.79, 6.51, 3.02, 10.7, // 'a' to 'm'
        6.96, 6.68, 6.85, 6.85, 4.69, 5.73, 4.33, 6.96, 6.51, 9.0, 6.51, 6.51, 5.78, // 'n' to 'z'
        6.98, 5.0, 6.98, 9.0, // '{' to '~'
    ];
    match c {
        ' '..='~' => ASCII[c as usize - 32],
        '·' => 4.0,
        _ => 8.0,
    }
}

/// The width of `s` in Verdana at 11 px, rounded up to a whole pixel.
pub fn text_width(s: &str) -> u32 {
    s.chars().map(char_width).sum::<f64>().ceil() as u32
}

/// A flat badge: `label` on grey, `value` on `colour`, white text with a faint shadow,
/// each half its text's width and 5 px either side; `title` for screen readers and as a
/// tooltip. The text is scaled to its measured width (`textLength`), so it fits whatever
/// font the viewer has.
pub fn svg(label: &str, value: &str, colour: &str, title: &str) -> String {
    let (lt, vt) = (text_width(label), text_width(value));
    let (lw, vw) = (lt + 10, vt + 10);
    let w = lw + vw;
    let (label, value, title) = (xml_escape(label), xml_escape(value), xml_escape(title));
    // Text is drawn at 10 times the size and scaled down, as shields does, for sub-pixel
    // placement in every renderer.
    let (lx, vx) = (lw * 5, lw * 10 + vw * 5);
    let (lt, vt) = (lt * 10, vt * 10);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\"{title}\">\
<title>{title}</title>\
<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
<clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
<g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"{LABEL_COLOUR}\"/><rect x=\"{lw}\" width=\"{vw}\" height=\"20\" fill=\"{colour}\"/><rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" text-rendering=\"geometricPrecision\" font-size=\"110\">\
<text aria-hidden=\"true\" x=\"{lx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{lt}\">{label}</text>\
<text x=\"{lx}\" y=\"140\" transform=\"scale(.1)\" fill=\"#fff\" textLength=\"{lt}\">{label}</text>\
<text aria-hidden=\"true\" x=\"{vx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{vt}\">{value}</text>\
<text x=\"{vx}\" y=\"140\" transform=\"scale(.1)\" fill=\"#fff\" textLength=\"{vt}\">{value}</text>\
</g></svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_path_names_a_pair_in_either_case() {
        assert_eq!(parse_path("/badge/NG/BVN.svg").unwrap().to_string(), "NG/BVN");
        assert_eq!(parse_path("/badge/ng/nin_v2.svg").unwrap().to_string(), "NG/NIN_V2");
        for bad in [
            "/badge/NG/BVN",
            "/badge/NG.svg",
            "/badge/XX/BVN.svg",
            "/badge/NG/BV N.svg",
            "/badge/NG/BVN/x.svg",
            "/badge/NG/%42VN.svg",
            "/badge//BVN.svg",
            "/badges/NG/BVN.svg",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn uptime_is_rounded_to_a_tenth_but_never_up_to_100() {
        assert_eq!(uptime_text(1.0), "100%");
        assert_eq!(uptime_text(0.99999), "99.9%");
        assert_eq!(uptime_text(0.9995), "99.9%");
        assert_eq!(uptime_text(0.9921), "99.2%");
        assert_eq!(uptime_text(0.2499), "25.0%", "as the status page shows 25.00%");
        assert_eq!(uptime_text(0.5), "50.0%");
        assert_eq!(uptime_text(0.0), "0.0%");
    }

    #[test]
    fn each_state_has_its_colour() {
        assert_eq!(colour(AuthorityState::Online), "#4c1");
        assert_eq!(colour(AuthorityState::Interruption), "#fe7d37");
        assert_eq!(colour(AuthorityState::Offline), "#e05d44");
        assert_eq!(colour(AuthorityState::Unknown), "#9f9f9f");
    }

    #[test]
    fn widths_follow_the_text() {
        // b 6.85 + u 6.96 + i 3.02 + l 3.02 + d 6.85 = 26.7, rounded up.
        assert_eq!((text_width("build"), text_width("passing")), (27, 42));
        assert!(text_width("NG NIN_V2") > text_width("NG BVN"));
        let badge = svg("NG BVN", "online · 99.2% 7d", "#4c1", "NG BVN: online, 99.2% uptime over 7 days");
        let (l, v) = (text_width("NG BVN") + 10, text_width("online · 99.2% 7d") + 10);
        assert!(
            badge.starts_with(&format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"20\"", l + v))
        );
        assert!(badge.contains(&format!("<rect width=\"{l}\" height=\"20\" fill=\"#555\"/><rect x=\"{l}\" width=\"{v}\" height=\"20\" fill=\"#4c1\"/>")));
        assert!(badge.contains("<title>NG BVN: online, 99.2% uptime over 7 days</title>"));
        assert_eq!(badge.matches(">online · 99.2% 7d</text>").count(), 2);
    }

    #[test]
    fn text_in_a_badge_is_escaped() {
        let badge = svg("a<b", "c&d", "#4c1", "\"t\"");
        assert!(badge.contains(">a&lt;b</text>") && badge.contains(">c&amp;d</text>"));
        assert!(badge.contains("aria-label=\"&quot;t&quot;\""));
        assert!(!badge.contains("a<b") && !badge.contains("c&d"));
    }
}
