//! OCF meta-data: the XML an agent prints for `meta-data`, read just enough for hapair — the
//! agent's name, its parameters (name, required, unique) and its actions' advised timeout,
//! interval and depth.
//!
//! The parser is a small tolerant tag scanner rather than an XML library: agents print a
//! simple, fixed shape (ra-api-1.dtd), and we only need attributes of three elements. It skips
//! comments, CDATA, processing instructions and the DOCTYPE, ignores text and unknown
//! elements, decodes the five predefined entities in attribute values, and never panics on
//! input. It does not check well-formedness beyond what it needs, nor validate against the DTD.

use super::Action;
use crate::core::time::Duration;
use core::fmt;

/// What an agent says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaData {
    /// The `name` of `<resource-agent>`.
    pub agent: String,
    /// The `<parameter>`s inside `<parameters>`, in order.
    pub parameters: Vec<ParameterMeta>,
    /// The `<action>`s inside `<actions>`, in order (an action may appear more than once).
    pub actions: Vec<ActionMeta>,
}

/// One `<parameter>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterMeta {
    /// The parameter's name (`OCF_RESKEY_<name>`).
    pub name: String,
    /// `required="1"`: the resource must set it.
    pub required: bool,
    /// `unique="1"`: no two resources of this agent may share its value.
    pub unique: bool,
}

/// One `<action>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionMeta {
    /// The action's name, e.g. `monitor`.
    pub name: String,
    /// The advised minimum timeout.
    pub timeout: Option<Duration>,
    /// The advised interval (for monitor).
    pub interval: Option<Duration>,
    /// The monitor depth (`depth="0"`).
    pub depth: Option<u32>,
}

/// Why a meta-data document could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaDataError {
    /// No `<resource-agent>` element: not OCF meta-data.
    NotResourceAgent,
    /// A tag, comment or quoted value runs to the end of the document.
    Unterminated,
    /// The output is not UTF-8.
    NotUtf8,
}

impl fmt::Display for MetaDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetaDataError::NotResourceAgent => "no <resource-agent> element",
            MetaDataError::Unterminated => "unterminated tag",
            MetaDataError::NotUtf8 => "not UTF-8",
        })
    }
}

impl MetaData {
    /// Reads an agent's meta-data output.
    pub fn parse_bytes(xml: &[u8]) -> Result<MetaData, MetaDataError> {
        MetaData::parse(core::str::from_utf8(xml).map_err(|_| MetaDataError::NotUtf8)?)
    }

    /// Reads a meta-data document.
    pub fn parse(xml: &str) -> Result<MetaData, MetaDataError> {
        let mut meta = MetaData::default();
        let (mut root, mut in_params, mut in_actions) = (false, false, false);
        let mut pos = 0;
        while let Some(tag) = next_tag(xml, &mut pos)? {
            match (tag.name, tag.closing) {
                ("resource-agent", false) => {
                    root = true;
                    meta.agent = attr(tag.attrs, "name").unwrap_or_default();
                }
                ("parameters", closing) => in_params = !closing && !tag.empty,
                ("actions", closing) => in_actions = !closing && !tag.empty,
                ("parameter", false) if in_params => {
                    if let Some(name) = attr(tag.attrs, "name") {
                        let flag = |k| attr(tag.attrs, k).is_some_and(|v| truthy(&v));
                        let (required, unique) = (flag("required"), flag("unique"));
                        meta.parameters.push(ParameterMeta { name, required, unique });
                    }
                }
                ("action", false) if in_actions => {
                    if let Some(name) = attr(tag.attrs, "name") {
                        let dur = |k| attr(tag.attrs, k).and_then(|v| parse_duration(&v));
                        let depth = attr(tag.attrs, "depth").and_then(|v| v.trim().parse().ok());
                        let (timeout, interval) = (dur("timeout"), dur("interval"));
                        meta.actions.push(ActionMeta { name, timeout, interval, depth });
                    }
                }
                _ => {}
            }
        }
        if root { Ok(meta) } else { Err(MetaDataError::NotResourceAgent) }
    }

    /// The parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&ParameterMeta> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The agent's advice for `action`; for monitor, the depth-0 entry when there are several.
    pub fn action(&self, action: Action) -> Option<&ActionMeta> {
        let name = action.ocf_name();
        let mut all = self.actions.iter().filter(|a| a.name == name);
        let first = all.clone().next();
        all.find(|a| a.depth.unwrap_or(0) == 0).or(first)
    }
}

/// A meta-data duration: a number with an optional unit (none or `s`/`sec`: seconds, `ms`,
/// `m`/`min`, `h`/`hr`), as in `timeout="20s"`. `None` when unreadable.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms_per = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1000,
        "ms" | "msec" | "msecs" => 1,
        "m" | "min" | "mins" => 60_000,
        "h" | "hr" | "hrs" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms_per)?))
}

/// One element tag: `<name attrs>`, `</name>` or `<name attrs/>`.
struct Tag<'a> {
    name: &'a str,
    attrs: &'a str,
    closing: bool,
    empty: bool,
}

/// The next element tag at or after `*pos`, skipping everything that is not one.
fn next_tag<'a>(xml: &'a str, pos: &mut usize) -> Result<Option<Tag<'a>>, MetaDataError> {
    const SKIPS: [(&str, &str); 4] =
        [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")];
    loop {
        let Some(start) = xml.get(*pos..).and_then(|s| s.find('<')) else {
            return Ok(None);
        };
        let rest = &xml[*pos + start..];
        if let Some((open, close)) = SKIPS.iter().find(|(open, _)| rest.starts_with(open)) {
            let end = rest[open.len()..].find(close).ok_or(MetaDataError::Unterminated)?;
            *pos += start + open.len() + end + close.len();
            continue;
        }
        let len = tag_len(rest).ok_or(MetaDataError::Unterminated)?;
        *pos += start + len;
        let inner = &rest[1..len - 1];
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(i) => (true, i),
            None => (false, inner),
        };
        let (empty, inner) = match inner.strip_suffix('/') {
            Some(i) => (true, i),
            None => (false, inner),
        };
        let name_end = inner.find(|c: char| c.is_ascii_whitespace()).unwrap_or(inner.len());
        let (name, attrs) = inner.split_at(name_end);
        return Ok(Some(Tag { name, attrs, closing, empty }));
    }
}

/// The length of the tag at the start of `s` up to and including its `>`, outside quotes.
fn tag_len(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The decoded value of attribute `key` in `attrs` (`k="v"` or `k='v'`).
fn attr(attrs: &str, key: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &after[1..];
        let end = body.find(quote)?;
        if name == key {
            return Some(decode_entities(&body[..end]));
        }
        rest = &body[end + 1..];
    }
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parameters_and_actions_and_skips_the_rest() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name='X' version="1.0">
<!-- <parameter name="commented" required="1"/> -->
<longdesc lang="en">a &lt;parameter&gt; <![CDATA[<parameter name="cdata"/>]]></longdesc>
<parameters>
<parameter name="ip" unique="1" required="1"><content type="string" default="a>b"/></parameter>
<parameter name = "nic" required="0" />
</parameters>
<actions>
<action name="monitor" depth="10" timeout="60s" interval="30s"/>
<action name="monitor" depth="0" timeout="20" interval="10s"/>
<action name="start" timeout="2min"/>
<action name="stop" timeout="bogus"/>
</actions>
<parameter name="outside"/>
</resource-agent>"#;
        let m = MetaData::parse(xml).unwrap();
        assert_eq!(m.agent, "X");
        let names: Vec<_> = m.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ip", "nic"]);
        assert!(m.parameters[0].required && m.parameters[0].unique);
        assert!(!m.parameters[1].required);
        let mon = m.action(Action::Monitor).unwrap();
        assert_eq!((mon.timeout, mon.depth), (Some(Duration::from_secs(20)), Some(0)));
        assert_eq!(mon.interval, Some(Duration::from_secs(10)));
        assert_eq!(m.action(Action::Start).unwrap().timeout, Some(Duration::from_secs(120)));
        assert_eq!(m.action(Action::Stop).unwrap().timeout, None);
        assert!(m.action(Action::ValidateAll).is_none());
    }

    #[test]
    fn rejects_what_is_not_meta_data() {
        assert_eq!(MetaData::parse("usage: foo"), Err(MetaDataError::NotResourceAgent));
        assert_eq!(MetaData::parse("<resource-agent name=\"x"), Err(MetaDataError::Unterminated));
        assert_eq!(MetaData::parse("<!-- <resource-agent>"), Err(MetaDataError::Unterminated));
        assert_eq!(MetaData::parse_bytes(b"\xff<"), Err(MetaDataError::NotUtf8));
    }

    #[test]
    fn never_panics_on_truncations() {
        let xml = "<resource-agent name=\"a&amp;b\"><parameters><parameter name='p' \
                   required=\"1\"/></parameters><!-- x --><actions><action name=\"start\" \
                   timeout=\"5s\"/></actions></resource-agent>";
        for cut in 0..=xml.len() {
            let _ = MetaData::parse(&xml[..cut]);
        }
        assert_eq!(MetaData::parse(xml).unwrap().agent, "a&b");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,300}") {
            let _ = MetaData::parse(&text);
        }

        #[test]
        fn never_panics_on_tag_soup(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "<", ">", "/", "\"", "'", "=", " ", "<!--", "-->", "<![CDATA[", "]]>", "<?",
                "resource-agent", "parameters", "parameter", "actions", "action", "name",
                "required", "timeout", "1", "20s", "&amp;", "&",
            ]),
            0..60,
        )) {
            let _ = MetaData::parse(&parts.concat());
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration(" 15 "), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
    }
}
