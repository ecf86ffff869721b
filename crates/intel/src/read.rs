//! Reading STIX 2.1 from outside: bundles and TAXII 2.1 envelopes a partner sent, each object
//! checked for the common properties (STIX 2.1 CS02 section 3), the properties its type
//! requires, and, for indicators of `pattern_type` `stix`, a pattern that parses
//! ([`crate::parse_pattern`]). Errors name the object (its index and id), the property and what
//! is wrong with it.
//!
//! Input is hostile until checked, so everything is bounded: documents over
//! [`MAX_DOCUMENT_BYTES`] are refused before parsing, JSON nests at most 128 deep (the JSON
//! parser's own limit) and values inside one object at most [`MAX_OBJECT_DEPTH`] deep, strings
//! hold at most [`MAX_STRING_BYTES`] and lists or dictionaries at most [`MAX_ENTRIES`] entries.
//!
//! Not a STIX validator for every object type: only the types an importer meets are checked
//! beyond the common properties, and no reference is resolved (an object may refer to one the
//! bundle does not hold).

use serde_json::{Map, Value};

use crate::patterning::{parse_pattern, stix_time};
use crate::IntelError;
use moat_types::Timestamp;

/// Largest bundle or envelope accepted, in bytes (64 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Deepest nesting of values inside one object (the object itself is depth 0).
pub const MAX_OBJECT_DEPTH: usize = 32;

/// Longest string accepted anywhere in an object, in bytes (1 MiB).
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Most entries of any list or dictionary inside an object.
pub const MAX_ENTRIES: usize = 100_000;

/// What a TAXII server and an importer need to know of any STIX object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `id`, `<type>--<uuid>`.
    pub id: String,
    /// `type`.
    pub kind: String,
    /// The object's version: `modified`, else `created`, else the empty string (objects such
    /// as SCOs have no version; TAXII then uses the date added).
    pub version: String,
    /// `spec_version` (`"2.1"`; for SCOs, which may omit it, `"2.1"` too, as the spec says to
    /// assume).
    pub spec_version: String,
}

/// A TAXII 2.1 envelope (the body of a "get objects" response), its objects checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// Whether the server holds more objects than it sent (`more`, false when absent).
    pub more: bool,
    /// Where to ask for the next page (`next`, at most 4096 bytes).
    pub next: Option<String>,
    /// The objects, each checked with [`check_object`].
    pub objects: Vec<Value>,
}

/// Checks one object's common properties (and, for an indicator, its pattern); `Err` names the
/// property and what is wrong with it.
pub fn check_object(obj: &Value) -> Result<ObjectMeta, IntelError> {
    let Value::Object(o) = obj else {
        return Err(IntelError::Malformed(format!(
            "object is {}, not a JSON object",
            kind_of(obj)
        )));
    };
    if o.len() > MAX_ENTRIES {
        return Err(IntelError::Malformed(format!(
            "object has {} properties, more than {MAX_ENTRIES}",
            o.len()
        )));
    }
    for (name, value) in o {
        bounded(value, 1).map_err(|reason| prop(name, reason))?;
    }
    let kind = req_str(o, "type")?;
    if !is_type(kind) {
        return Err(prop(
            "type",
            format!(
                "{:?} is not a STIX type (a-z, 0-9 and single hyphens, 3 to 250 characters)",
                clip(kind)
            ),
        ));
    }
    if kind == "bundle" {
        return Err(prop("type", "a bundle cannot be an object of a bundle"));
    }
    let id = req_str(o, "id")?;
    match id_type(id) {
        Some(t) if t == kind => {}
        Some(t) => {
            return Err(prop(
                "id",
                format!("{:?} is an id of type {t:?}, not {kind:?}", clip(id)),
            ))
        }
        None => {
            return Err(prop(
                "id",
                format!("{:?} is not a STIX id (<type>--<uuid>)", clip(id)),
            ))
        }
    }
    for name in o.keys() {
        if !is_property_name(name) {
            return Err(prop(
                name,
                "is not a STIX property name (a-z, 0-9 and _, 3 to 250 characters)",
            ));
        }
    }
    let class = classify(kind, o);
    let spec_version = match o.get("spec_version") {
        None if class == Class::Sco => "2.1",
        None => return Err(missing("spec_version", kind)),
        Some(Value::String(s)) if s == "2.1" => "2.1",
        Some(Value::String(s)) => {
            return Err(prop(
                "spec_version",
                format!("{:?} is not read (only STIX 2.1)", clip(s)),
            ))
        }
        Some(v) => return Err(wrong_type("spec_version", "a string", v)),
    };
    if class != Class::Sco {
        check_common(kind, class, o)?;
        check_type(kind, o)?;
    } else {
        check_markings(o)?;
    }
    let version = [o.get("modified"), o.get("created")]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .unwrap_or_default();
    Ok(ObjectMeta {
        id: id.to_owned(),
        kind: kind.to_owned(),
        version: version.to_owned(),
        spec_version: spec_version.to_owned(),
    })
}

/// Parses a bundle (`{"type": "bundle", "id": "bundle--…", "objects": [...]}`) and checks every
/// object; the first bad object fails the whole bundle, its index and id in the error. Refuses
/// documents over [`MAX_DOCUMENT_BYTES`].
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<Value>, IntelError> {
    let Value::Object(mut top) = parse_json(bytes)? else {
        return Err(IntelError::Malformed("bundle is not a JSON object".into()));
    };
    match top.get("type") {
        Some(Value::String(t)) if t == "bundle" => {}
        Some(Value::String(t)) => {
            return Err(prop("type", format!("{:?} is not \"bundle\"", clip(t))))
        }
        Some(v) => return Err(wrong_type("type", "a string", v)),
        None => return Err(missing("type", "bundle")),
    }
    let id = req_str(&top, "id")?;
    if id_type(id) != Some("bundle") {
        return Err(prop(
            "id",
            format!("{:?} is not a bundle id (bundle--<uuid>)", clip(id)),
        ));
    }
    match top.get("spec_version") {
        None => {}
        Some(Value::String(s)) if s == "2.1" => {}
        Some(v) => {
            return Err(prop(
                "spec_version",
                format!(
                    "{} is not read (only STIX 2.1 bundles)",
                    clip(&v.to_string())
                ),
            ))
        }
    }
    let objects = take_objects(&mut top)?;
    check_all(&objects)?;
    Ok(objects)
}

/// Parses a TAXII 2.1 envelope (`{"more": …, "next": …, "objects": [...]}`, every member
/// optional) and checks every object as [`parse_bundle`] does. Refuses documents over
/// [`MAX_DOCUMENT_BYTES`].
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, IntelError> {
    let Value::Object(mut top) = parse_json(bytes)? else {
        return Err(IntelError::Malformed(
            "envelope is not a JSON object".into(),
        ));
    };
    let more = match top.get("more") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(wrong_type("more", "a boolean", v)),
    };
    let next = match top.get("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 4096 => Some(s.clone()),
        Some(Value::String(s)) => {
            return Err(prop("next", format!("{} bytes, more than 4096", s.len())))
        }
        Some(v) => return Err(wrong_type("next", "a string", v)),
    };
    let objects = take_objects(&mut top)?;
    check_all(&objects)?;
    Ok(Envelope {
        more,
        next,
        objects,
    })
}

fn parse_json(bytes: &[u8]) -> Result<Value, IntelError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(IntelError::TooLarge {
            len: bytes.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let text = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        IntelError::Syntax {
            line,
            column,
            message,
        }
    })
}

fn take_objects(top: &mut Map<String, Value>) -> Result<Vec<Value>, IntelError> {
    match top.remove("objects") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(wrong_type("objects", "a list", &v)),
    }
}

fn check_all(objects: &[Value]) -> Result<(), IntelError> {
    for (index, o) in objects.iter().enumerate() {
        check_object(o).map_err(|e| IntelError::Object {
            index,
            id: o.get("id").and_then(Value::as_str).map(clip),
            error: Box::new(e),
        })?;
    }
    Ok(())
}

/// What the spec requires of an object depends on its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// SDOs, SROs and custom objects with `created`: versioned, `created`/`modified` required.
    Versioned,
    /// `marking-definition`: `created` required, never modified.
    Marking,
    /// Cyber-observables (and custom objects without `created`): no version, `spec_version`
    /// optional.
    Sco,
}

const SDOS: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
    // SROs.
    "relationship",
    "sighting",
    // Meta objects with both timestamps.
    "language-content",
    "extension-definition",
];

const SCOS: &[&str] = &[
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

fn classify(kind: &str, o: &Map<String, Value>) -> Class {
    if kind == "marking-definition" {
        Class::Marking
    } else if SDOS.contains(&kind) {
        Class::Versioned
    } else if SCOS.contains(&kind) || !o.contains_key("created") {
        Class::Sco
    } else {
        Class::Versioned
    }
}

/// Timestamp properties checked wherever they appear on a non-observable object.
const TIMESTAMPS: &[&str] = &[
    "created",
    "modified",
    "valid_from",
    "valid_until",
    "first_seen",
    "last_seen",
    "first_observed",
    "last_observed",
    "published",
    "start_time",
    "stop_time",
];

fn check_common(kind: &str, class: Class, o: &Map<String, Value>) -> Result<(), IntelError> {
    for name in TIMESTAMPS {
        time(o, name)?;
    }
    let created = time(o, "created")?.ok_or_else(|| missing("created", kind))?;
    match (class, time(o, "modified")?) {
        (Class::Versioned, None) => return Err(missing("modified", kind)),
        (_, Some(m)) if m < created => {
            return Err(prop(
                "modified",
                format!(
                    "{} is before created ({})",
                    text(o, "modified"),
                    text(o, "created")
                ),
            ))
        }
        _ => {}
    }
    if let Some(v) = o.get("created_by_ref") {
        id_ref("created_by_ref", v, Some("identity"))?;
    }
    check_markings(o)?;
    if let Some(v) = o.get("revoked") {
        if !v.is_boolean() {
            return Err(wrong_type("revoked", "a boolean", v));
        }
    }
    if let Some(v) = o.get("labels") {
        strings("labels", v)?;
    }
    if let Some(v) = o.get("confidence") {
        match v.as_u64() {
            Some(c) if c <= 100 => {}
            _ => {
                return Err(prop(
                    "confidence",
                    format!("{} is not an integer from 0 to 100", clip(&v.to_string())),
                ))
            }
        }
    }
    if let Some(v) = o.get("lang") {
        if !v.is_string() {
            return Err(wrong_type("lang", "a string", v));
        }
    }
    if let Some(v) = o.get("external_references") {
        let list = v
            .as_array()
            .ok_or_else(|| wrong_type("external_references", "a list", v))?;
        for (i, r) in list.iter().enumerate() {
            let here = format!("external_references[{i}]");
            let r = r
                .as_object()
                .ok_or_else(|| wrong_type(&here, "an object", r))?;
            match r.get("source_name") {
                Some(Value::String(_)) => {}
                Some(v) => return Err(wrong_type(&format!("{here}.source_name"), "a string", v)),
                None => return Err(prop(format!("{here}.source_name"), "is required")),
            }
        }
    }
    Ok(())
}

/// `object_marking_refs` and `granular_markings`, which observables may carry too.
fn check_markings(o: &Map<String, Value>) -> Result<(), IntelError> {
    if let Some(v) = o.get("object_marking_refs") {
        let list = v
            .as_array()
            .ok_or_else(|| wrong_type("object_marking_refs", "a list", v))?;
        for (i, r) in list.iter().enumerate() {
            id_ref(
                &format!("object_marking_refs[{i}]"),
                r,
                Some("marking-definition"),
            )?;
        }
    }
    if let Some(v) = o.get("granular_markings") {
        let list = v
            .as_array()
            .ok_or_else(|| wrong_type("granular_markings", "a list", v))?;
        for (i, g) in list.iter().enumerate() {
            let here = format!("granular_markings[{i}]");
            let g = g
                .as_object()
                .ok_or_else(|| wrong_type(&here, "an object", g))?;
            match g.get("selectors") {
                Some(s @ Value::Array(a)) if !a.is_empty() => {
                    strings(&format!("{here}.selectors"), s)?;
                }
                Some(_) => {
                    return Err(prop(
                        format!("{here}.selectors"),
                        "must be a non-empty list of strings",
                    ))
                }
                None => return Err(prop(format!("{here}.selectors"), "is required")),
            }
            if let Some(r) = g.get("marking_ref") {
                id_ref(
                    &format!("{here}.marking_ref"),
                    r,
                    Some("marking-definition"),
                )?;
            }
        }
    }
    Ok(())
}

/// Properties particular to the object types an importer meets.
fn check_type(kind: &str, o: &Map<String, Value>) -> Result<(), IntelError> {
    const NAMED: &[&str] = &[
        "attack-pattern",
        "campaign",
        "course-of-action",
        "identity",
        "incident",
        "infrastructure",
        "intrusion-set",
        "report",
        "threat-actor",
        "tool",
        "vulnerability",
    ];
    if NAMED.contains(&kind) {
        req_str(o, "name")?;
    }
    match kind {
        "indicator" => {
            let pattern = req_str(o, "pattern")?;
            let pattern_type = req_str(o, "pattern_type")?;
            let from = time(o, "valid_from")?.ok_or_else(|| missing("valid_from", kind))?;
            if let Some(until) = time(o, "valid_until")? {
                if until <= from {
                    return Err(prop(
                        "valid_until",
                        format!(
                            "{} is not after valid_from ({})",
                            text(o, "valid_until"),
                            text(o, "valid_from")
                        ),
                    ));
                }
            }
            if let Some(v) = o.get("indicator_types") {
                strings("indicator_types", v)?;
            }
            if pattern_type == "stix" {
                if let Err(e) = parse_pattern(pattern) {
                    let reason = match e {
                        IntelError::Pattern { offset, message } => {
                            format!("does not parse: at byte {offset}: {message}")
                        }
                        other => other.to_string(),
                    };
                    return Err(prop("pattern", reason));
                }
            }
        }
        "malware" => match o.get("is_family") {
            Some(Value::Bool(true)) => {
                req_str(o, "name")?;
            }
            Some(Value::Bool(false)) => {}
            Some(v) => return Err(wrong_type("is_family", "a boolean", v)),
            None => return Err(missing("is_family", kind)),
        },
        "relationship" => {
            let rt = req_str(o, "relationship_type")?;
            let ok = !rt.is_empty()
                && rt
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(prop(
                    "relationship_type",
                    format!("{:?} is not a-z, 0-9 and hyphens", clip(rt)),
                ));
            }
            for name in ["source_ref", "target_ref"] {
                let v = o.get(name).ok_or_else(|| missing(name, kind))?;
                id_ref(name, v, None)?;
            }
            ordered(o, "start_time", "stop_time", false)?;
        }
        "sighting" => {
            let v = o
                .get("sighting_of_ref")
                .ok_or_else(|| missing("sighting_of_ref", kind))?;
            id_ref("sighting_of_ref", v, None)?;
            if let Some(v) = o.get("count") {
                match v.as_u64() {
                    Some(c) if c <= 999_999_999 => {}
                    _ => {
                        return Err(prop(
                            "count",
                            format!(
                                "{} is not an integer from 0 to 999999999",
                                clip(&v.to_string())
                            ),
                        ))
                    }
                }
            }
            ordered(o, "first_seen", "last_seen", true)?;
            for name in ["where_sighted_refs", "observed_data_refs"] {
                id_refs(o, name)?;
            }
        }
        "campaign" | "intrusion-set" | "threat-actor" | "infrastructure" => {
            ordered(o, "first_seen", "last_seen", true)?;
        }
        "report" => {
            time(o, "published")?.ok_or_else(|| missing("published", kind))?;
            required_refs(o, "object_refs", kind)?;
        }
        "grouping" => {
            req_str(o, "context")?;
            required_refs(o, "object_refs", kind)?;
        }
        "note" => {
            req_str(o, "content")?;
            required_refs(o, "object_refs", kind)?;
        }
        "opinion" => {
            req_str(o, "opinion")?;
            required_refs(o, "object_refs", kind)?;
        }
        "observed-data" => {
            time(o, "first_observed")?.ok_or_else(|| missing("first_observed", kind))?;
            time(o, "last_observed")?.ok_or_else(|| missing("last_observed", kind))?;
            ordered(o, "first_observed", "last_observed", true)?;
            match o.get("number_observed").map(|v| (v, v.as_u64())) {
                Some((_, Some(n))) if (1..=999_999_999).contains(&n) => {}
                Some((v, _)) => {
                    return Err(prop(
                        "number_observed",
                        format!(
                            "{} is not an integer from 1 to 999999999",
                            clip(&v.to_string())
                        ),
                    ))
                }
                None => return Err(missing("number_observed", kind)),
            }
        }
        "malware-analysis" => {
            req_str(o, "product")?;
        }
        _ => {}
    }
    Ok(())
}

/// `later` is not before `earlier` (or strictly after, when `equal_ok` is false).
fn ordered(
    o: &Map<String, Value>,
    earlier: &str,
    later: &str,
    equal_ok: bool,
) -> Result<(), IntelError> {
    if let (Some(a), Some(b)) = (time(o, earlier)?, time(o, later)?) {
        if b < a || (!equal_ok && b == a) {
            let how = if equal_ok { "before" } else { "not after" };
            return Err(prop(
                later,
                format!(
                    "{} is {how} {earlier} ({})",
                    text(o, later),
                    text(o, earlier)
                ),
            ));
        }
    }
    Ok(())
}

fn required_refs(o: &Map<String, Value>, name: &str, kind: &str) -> Result<(), IntelError> {
    match o.get(name) {
        None => Err(missing(name, kind)),
        Some(Value::Array(a)) if a.is_empty() => Err(prop(name, "must not be empty")),
        Some(_) => id_refs(o, name),
    }
}

fn id_refs(o: &Map<String, Value>, name: &str) -> Result<(), IntelError> {
    let Some(v) = o.get(name) else {
        return Ok(());
    };
    let list = v.as_array().ok_or_else(|| wrong_type(name, "a list", v))?;
    for (i, r) in list.iter().enumerate() {
        id_ref(&format!("{name}[{i}]"), r, None)?;
    }
    Ok(())
}

/// `v` is a STIX id, of type `want` if given.
fn id_ref(name: &str, v: &Value, want: Option<&str>) -> Result<(), IntelError> {
    let s = v.as_str().ok_or_else(|| wrong_type(name, "a string", v))?;
    match (id_type(s), want) {
        (Some(t), Some(w)) if t != w => Err(prop(
            name,
            format!("{:?} is not an id of type {w} ({w}--<uuid>)", clip(s)),
        )),
        (Some(_), _) => Ok(()),
        (None, _) => Err(prop(
            name,
            format!("{:?} is not a STIX id (<type>--<uuid>)", clip(s)),
        )),
    }
}

fn strings(name: &str, v: &Value) -> Result<(), IntelError> {
    let list = v.as_array().ok_or_else(|| wrong_type(name, "a list", v))?;
    for (i, s) in list.iter().enumerate() {
        if !s.is_string() {
            return Err(wrong_type(&format!("{name}[{i}]"), "a string", s));
        }
    }
    Ok(())
}

/// The timestamp property `name`, if present; `Err` if present and not a STIX timestamp.
fn time(o: &Map<String, Value>, name: &str) -> Result<Option<(Timestamp, u32)>, IntelError> {
    match o.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => stix_time(s).map(Some).ok_or_else(|| {
            prop(
                name,
                format!(
                    "{:?} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)",
                    clip(s)
                ),
            )
        }),
        Some(v) => Err(wrong_type(name, "a timestamp string", v)),
    }
}

/// The text of a string property, for messages.
fn text(o: &Map<String, Value>, name: &str) -> String {
    clip(o.get(name).and_then(Value::as_str).unwrap_or_default())
}

fn req_str<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a str, IntelError> {
    match o.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(wrong_type(name, "a string", v)),
        None => Err(prop(name, "is required")),
    }
}

/// Checks the bounds on one value at `depth` (the object's own properties are depth 1).
fn bounded(v: &Value, depth: usize) -> Result<(), String> {
    match v {
        Value::String(s) if s.len() > MAX_STRING_BYTES => Err(format!(
            "holds a string of {} bytes, more than {MAX_STRING_BYTES}",
            s.len()
        )),
        Value::Array(a) => {
            if a.len() > MAX_ENTRIES {
                return Err(format!(
                    "holds a list of {} entries, more than {MAX_ENTRIES}",
                    a.len()
                ));
            }
            if depth >= MAX_OBJECT_DEPTH && !a.is_empty() {
                return Err(format!("nests deeper than {MAX_OBJECT_DEPTH} levels"));
            }
            a.iter().try_for_each(|x| bounded(x, depth + 1))
        }
        Value::Object(m) => {
            if m.len() > MAX_ENTRIES {
                return Err(format!(
                    "holds a dictionary of {} entries, more than {MAX_ENTRIES}",
                    m.len()
                ));
            }
            if depth >= MAX_OBJECT_DEPTH && !m.is_empty() {
                return Err(format!("nests deeper than {MAX_OBJECT_DEPTH} levels"));
            }
            for (k, x) in m {
                if k.len() > MAX_STRING_BYTES {
                    return Err(format!("holds a key of {} bytes", k.len()));
                }
                bounded(x, depth + 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `^[a-z0-9-]{3,250}$` without `--`.
fn is_type(s: &str) -> bool {
    (3..=250).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.contains("--")
}

/// `^[a-z0-9_]{3,250}$`, and `id`.
fn is_property_name(s: &str) -> bool {
    s == "id"
        || ((3..=250).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

/// The type of a `<type>--<uuid>` id (UUID in lowercase text form, any version).
fn id_type(id: &str) -> Option<&str> {
    let (t, uuid) = id.split_once("--")?;
    if !is_type(t) {
        return None;
    }
    let u = uuid.as_bytes();
    let ok = u.len() == 36
        && u.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        });
    ok.then_some(t)
}

fn prop(property: impl Into<String>, reason: impl Into<String>) -> IntelError {
    let property: String = property.into();
    IntelError::Property {
        property: clip(&property),
        reason: reason.into(),
    }
}

fn missing(name: &str, kind: &str) -> IntelError {
    prop(name, format!("is required on {}", clip(kind)))
}

fn wrong_type(name: &str, want: &str, found: &Value) -> IntelError {
    prop(name, format!("must be {want}, not {}", kind_of(found)))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// At most 100 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(100).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const IDENTITY: &str = "identity--6d0a7f3e-2c41-4b8e-9a57-1e2fc3d4b5a6";
    const MARKING: &str = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421";
    const INDICATOR: &str = "indicator--0b5c4d3e-2f1a-5b6c-8d7e-9f0a1b2c3d4e";

    fn indicator() -> Value {
        json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": INDICATOR,
            "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-02T00:00:00.000Z",
            "created_by_ref": IDENTITY,
            "object_marking_refs": [MARKING],
            "name": "x",
            "indicator_types": ["malicious-activity"],
            "pattern": "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_until": "2024-02-01T00:00:00Z",
            "confidence": 90,
            "labels": ["a"],
            "external_references": [{"source_name": "moat"}],
            "x_moat_partner": "Partner",
        })
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    /// The error text of `check_object(v)`, which must fail.
    fn refused(v: &Value) -> String {
        match check_object(v) {
            Err(e) => e.to_string(),
            Ok(m) => panic!("accepted {v}: {m:?}"),
        }
    }

    #[test]
    fn a_good_indicator_gives_its_meta() {
        let m = check_object(&indicator()).unwrap();
        assert_eq!(
            m,
            ObjectMeta {
                id: INDICATOR.into(),
                kind: "indicator".into(),
                version: "2024-01-02T00:00:00.000Z".into(),
                spec_version: "2.1".into(),
            }
        );
        let sco = json!({"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"});
        let m = check_object(&sco).unwrap();
        assert_eq!((m.version.as_str(), m.spec_version.as_str()), ("", "2.1"));
        let custom = json!({"type": "x-moat-ja4", "id": "x-moat-ja4--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "t13d"});
        check_object(&custom).unwrap();
    }

    #[test]
    fn the_published_tlp_markings_pass() {
        for tlp in [crate::Tlp::Clear, crate::Tlp::Amber, crate::Tlp::Red] {
            let m = check_object(&tlp.marking_definition()).unwrap();
            assert_eq!(m.version, "2022-10-01T00:00:00.000Z");
        }
    }

    #[test]
    fn malformed_objects_name_the_property() {
        let i = indicator;
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "object is a list, not a JSON object"),
            (without(i(), "type"), "property \"type\": is required"),
            (with(i(), "type", json!("Indicator")), "property \"type\": \"Indicator\" is not a STIX type"),
            (with(i(), "type", json!("x--y")), "property \"type\""),
            (with(i(), "type", json!("bundle")), "property \"type\": a bundle cannot be"),
            (with(i(), "id", json!("indicator--1234")), "property \"id\": \"indicator--1234\" is not a STIX id"),
            (with(i(), "id", json!("indicator--0B5C4D3E-2F1A-5B6C-8D7E-9F0A1B2C3D4E")), "property \"id\""),
            (with(i(), "id", json!(IDENTITY)), "is an id of type \"identity\", not \"indicator\""),
            (without(i(), "spec_version"), "property \"spec_version\": is required on indicator"),
            (with(i(), "spec_version", json!("2.0")), "property \"spec_version\": \"2.0\" is not read"),
            (
                with(i(), "modified", json!("2024-13-01T00:00:00Z")),
                "property \"modified\": \"2024-13-01T00:00:00Z\" is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)",
            ),
            (with(i(), "created", json!("2024-01-01T00:00:00+00:00")), "property \"created\": "),
            (with(i(), "modified", json!("2023-12-31T23:59:59.999Z")), "property \"modified\": 2023-12-31T23:59:59.999Z is before created"),
            (without(i(), "modified"), "property \"modified\": is required"),
            (without(i(), "created"), "property \"created\": is required"),
            (with(i(), "created_by_ref", json!(MARKING)), "property \"created_by_ref\": "),
            (with(i(), "object_marking_refs", json!([IDENTITY])), "property \"object_marking_refs[0]\": "),
            (with(i(), "object_marking_refs", json!(MARKING)), "property \"object_marking_refs\": must be a list, not a string"),
            (with(i(), "revoked", json!("no")), "property \"revoked\": must be a boolean"),
            (with(i(), "labels", json!(["a", 1])), "property \"labels[1]\": must be a string"),
            (with(i(), "confidence", json!(101)), "property \"confidence\": 101 is not an integer from 0 to 100"),
            (with(i(), "confidence", json!(5.5)), "property \"confidence\""),
            (with(i(), "lang", json!(1)), "property \"lang\""),
            (with(i(), "external_references", json!([{"url": "x"}])), "property \"external_references[0].source_name\": is required"),
            (with(i(), "granular_markings", json!([{"marking_ref": MARKING}])), "property \"granular_markings[0].selectors\": is required"),
            (with(i(), "granular_markings", json!({})), "property \"granular_markings\": must be a list"),
            (with(i(), "Bad-Name", json!(1)), "property \"Bad-Name\": is not a STIX property name"),
            (with(i(), "ab", json!(1)), "property \"ab\": is not a STIX property name"),
            (without(i(), "pattern"), "property \"pattern\": is required"),
            (without(i(), "pattern_type"), "property \"pattern_type\": is required"),
            (without(i(), "valid_from"), "property \"valid_from\": is required on indicator"),
            (with(i(), "valid_until", json!("2024-01-01T00:00:00Z")), "property \"valid_until\": 2024-01-01T00:00:00Z is not after valid_from"),
            (with(i(), "pattern", json!("[ipv4-addr:value = ")), "property \"pattern\": does not parse: at byte 19: expected a literal"),
        ];
        for (v, want) in cases {
            let got = refused(&v);
            assert!(got.contains(want), "want {want:?}, got {got:?}");
        }
        // Other pattern languages are not parsed.
        check_object(&with(
            with(i(), "pattern_type", json!("sigma")),
            "pattern",
            json!("title: x"),
        ))
        .unwrap();
    }

    #[test]
    fn type_specific_properties_are_required() {
        let base = |kind: &str| {
            json!({
                "type": kind, "spec_version": "2.1",
                "id": format!("{kind}--0b5c4d3e-2f1a-5b6c-8d7e-9f0a1b2c3d4e"),
                "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
            })
        };
        for kind in [
            "campaign",
            "identity",
            "attack-pattern",
            "threat-actor",
            "intrusion-set",
            "tool",
        ] {
            assert!(
                refused(&base(kind)).contains("property \"name\": is required"),
                "{kind}"
            );
            check_object(&with(base(kind), "name", json!("n"))).unwrap();
        }
        assert!(refused(&base("malware")).contains("\"is_family\": is required"));
        assert!(refused(&with(base("malware"), "is_family", json!(true))).contains("\"name\""));
        check_object(&with(base("malware"), "is_family", json!(false))).unwrap();

        let rel = with(
            with(
                with(base("relationship"), "relationship_type", json!("uses")),
                "source_ref",
                json!(IDENTITY),
            ),
            "target_ref",
            json!(INDICATOR),
        );
        check_object(&rel).unwrap();
        assert!(
            refused(&without(rel.clone(), "target_ref")).contains("\"target_ref\": is required")
        );
        assert!(refused(&with(rel.clone(), "source_ref", json!("x")))
            .contains("\"source_ref\": \"x\" is not a STIX id"));
        assert!(refused(&with(rel, "relationship_type", json!("Uses")))
            .contains("\"relationship_type\""));

        let s = with(base("sighting"), "sighting_of_ref", json!(INDICATOR));
        check_object(&s).unwrap();
        assert!(refused(&without(s.clone(), "sighting_of_ref"))
            .contains("\"sighting_of_ref\": is required"));
        assert!(refused(&with(s.clone(), "count", json!(1_000_000_000))).contains("\"count\""));
        assert!(refused(&with(s.clone(), "count", json!(-1))).contains("\"count\""));
        let seen = with(
            with(s.clone(), "first_seen", json!("2024-01-02T00:00:00Z")),
            "last_seen",
            json!("2024-01-01T00:00:00Z"),
        );
        assert!(refused(&seen)
            .contains("property \"last_seen\": 2024-01-01T00:00:00Z is before first_seen"));
        assert!(refused(&with(s, "where_sighted_refs", json!(["nope"])))
            .contains("\"where_sighted_refs[0]\""));
        // A marking definition needs `created` only.
        let m = without(without(base("marking-definition"), "modified"), "created");
        assert!(refused(&m).contains("\"created\": is required"));
        // A custom object with `created` is versioned, without it is an observable.
        let custom = without(base("x-acme-thing"), "spec_version");
        assert!(refused(&custom).contains("\"spec_version\": is required"));
        check_object(&without(without(custom, "created"), "modified")).unwrap();
    }

    #[test]
    fn hostile_objects_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(refused(&with(indicator(), "x_deep", deep))
            .contains("property \"x_deep\": nests deeper than 32"));
        let long = "a".repeat(MAX_STRING_BYTES + 1);
        assert!(refused(&with(indicator(), "description", json!(long)))
            .contains("\"description\": holds a string"));
        let wide = vec![0u8; MAX_ENTRIES + 1];
        assert!(
            refused(&with(indicator(), "x_wide", json!(wide))).contains("\"x_wide\": holds a list")
        );
        let long_name = format!("x_{}", "a".repeat(300));
        let e = refused(&with(indicator(), &long_name, json!(1)));
        assert!(
            e.contains("is not a STIX property name") && e.len() < 300,
            "{e}"
        );
    }

    fn bundle(objects: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "bundle",
            "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
            "objects": objects,
        }))
        .unwrap()
    }

    #[test]
    fn bundles_are_checked_whole() {
        let objects = parse_bundle(&bundle(json!([
            indicator(),
            crate::Tlp::Amber.marking_definition()
        ])))
        .unwrap();
        assert_eq!(objects.len(), 2);
        let e = parse_bundle(&bundle(json!([
            indicator(),
            with(indicator(), "confidence", json!(200))
        ])))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("objects[1] ({INDICATOR}): property \"confidence\": 200 is not an integer from 0 to 100")
        );
        let e = parse_bundle(&bundle(json!([{"type": "indicator"}]))).unwrap_err();
        assert_eq!(e.to_string(), "objects[0]: property \"id\": is required");
        let empty = br#"{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"}"#;
        assert!(parse_bundle(empty).unwrap().is_empty());
        let e = parse_bundle(b"{\n  \"type\": \"bundle\",\n  \"id\": x }").unwrap_err();
        assert!(
            matches!(
                e,
                IntelError::Syntax {
                    line: 3,
                    column: 9,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "not JSON at line 3, column 9: expected value"
        );
        for (doc, want) in [
            (&br#"[]"#[..], "bundle is not a JSON object"),
            (br#"{"type": "x", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"}"#, "property \"type\": \"x\" is not \"bundle\""),
            (br#"{"type": "bundle", "id": "indicator--5d0092c5-5f74-4287-9642-33f4c354e56d"}"#, "property \"id\""),
            (br#"{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "spec_version": "2.0"}"#, "only STIX 2.1 bundles"),
            (br#"{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": {}}"#, "property \"objects\": must be a list"),
        ] {
            let got = parse_bundle(doc).unwrap_err().to_string();
            assert!(got.contains(want), "{got}");
        }
        let nested = bundle(json!([
            serde_json::from_slice::<Value>(&bundle(json!([]))).unwrap()
        ]));
        assert!(parse_bundle(&nested)
            .unwrap_err()
            .to_string()
            .contains("a bundle cannot be"));
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(
            parse_bundle(&huge),
            Err(IntelError::TooLarge { .. })
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse_bundle(deep.as_bytes()),
            Err(IntelError::Syntax { .. })
        ));
    }

    #[test]
    fn envelopes_are_checked_too() {
        let doc =
            serde_json::to_vec(&json!({"more": true, "next": "abc", "objects": [indicator()]}))
                .unwrap();
        let e = parse_envelope(&doc).unwrap();
        assert!(e.more);
        assert_eq!(e.next.as_deref(), Some("abc"));
        assert_eq!(e.objects.len(), 1);
        assert_eq!(parse_envelope(b"{}").unwrap(), Envelope::default());
        let bad =
            serde_json::to_vec(&json!({"objects": [without(indicator(), "pattern")]})).unwrap();
        assert!(parse_envelope(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("objects[0] (indicator--"));
        assert!(parse_envelope(br#"{"more": "yes"}"#)
            .unwrap_err()
            .to_string()
            .contains("\"more\": must be a boolean"));
        assert!(parse_envelope(br#"{"next": 5}"#)
            .unwrap_err()
            .to_string()
            .contains("\"next\""));
        assert!(parse_envelope(b"nope").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(s in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_bundle(&s);
            let _ = parse_envelope(&s);
        }

        #[test]
        fn arbitrary_json_text_never_panics(s in "[\\[\\]{}\":,0-9a-z\\- ]{0,200}") {
            let _ = parse_bundle(s.as_bytes());
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = check_object(&v);
            }
        }

        #[test]
        fn arbitrary_properties_never_panic(
            key in "[a-z_]{1,12}",
            text in "\\PC{0,60}",
            n in any::<i64>(),
        ) {
            for v in [json!(text.clone()), json!(n), json!([text.clone()]), json!({"k": text.clone()})] {
                let _ = check_object(&with(indicator(), &key, v));
            }
            let _ = check_object(&with(indicator(), "pattern", json!(text)));
        }
    }
}
