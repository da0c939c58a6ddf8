//! Where each claim comes from and where it is explained: the paper and the section of math.md (the
//! project's reference formulation, which names the paper of each section) it checks, and its page in
//! `docs/claims/`, compiled into the binary so the report can quote what a failure would mean.
//!
//! The papers' own section numbers are not given: math.md is the formulation nff checks, and it marks
//! which of its statements are the papers' and which are derived here.

/// The source of a claim.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// The paper(s): `[P1]`, `[P2]`, `[P3]` (math.md's references).
    pub paper: &'static str,
    /// The section of math.md it checks, e.g. `§4.4`.
    pub section: &'static str,
    /// The docs page, relative to the repository root.
    pub doc: &'static str,
    /// The docs page's text.
    pub text: &'static str,
}

macro_rules! source {
    ($paper:expr, $section:expr, $file:literal) => {
        Source {
            paper: $paper,
            section: $section,
            doc: concat!("docs/claims/", $file),
            text: include_str!(concat!("../../../docs/claims/", $file)),
        }
    };
}

/// The source of claim `id` (`C1`..`C24`).
pub fn source(id: &str) -> Option<Source> {
    Some(match id {
        "C1" => source!("[P2]", "§3.3", "C01.md"),
        "C2" => source!("[P2], [P1]", "§3.1", "C02.md"),
        "C3" => source!("[P2]", "§5", "C03.md"),
        "C4" => source!("[P2]", "§5", "C04.md"),
        "C5" => source!("[P2]", "§5", "C05.md"),
        "C6" => source!("[P2]", "§5", "C06.md"),
        "C7" => source!("[P2]", "§5, §7", "C07.md"),
        "C8" => source!("[P3]", "§4.1", "C08.md"),
        "C9" => source!("[P3]", "§4.1", "C09.md"),
        "C10" => source!("[P3]", "§4.1", "C10.md"),
        "C11" => source!("[P3]", "§4.1", "C11.md"),
        "C12" => source!("[P3]", "§4.1", "C12.md"),
        "C13" => source!("[P3]", "§4.1", "C13.md"),
        "C14" => source!("[P1]", "§4.3", "C14.md"),
        "C15" => source!("[P1]", "§4.2", "C15.md"),
        "C16" => source!("[P1]", "§4.2", "C16.md"),
        "C17" => source!("[P1]", "§4.4", "C17.md"),
        "C18" => source!("[P2]", "§5", "C18.md"),
        "C19" => source!("[P2]", "§3.1", "C19.md"),
        "C20" => source!("[P2]", "§5", "C20.md"),
        "C21" => source!("[P1]", "§4.2", "C21.md"),
        "C22" => source!("[P2]", "§2, §5", "C22.md"),
        "C23" => source!("[P1], [P3]", "§4.1, §4.4", "C23.md"),
        "C24" => source!("[P3]", "§4.1", "C24.md"),
        "C25" => source!("[P1]", "§4.1", "C25.md"),
        _ => return None,
    })
}

/// math.md, compiled in: the report links each claim's sections by their headings' anchors.
pub const MATH: &str = include_str!("../../../docs/math.md");

/// The papers of math.md's references and their arXiv pages.
pub const PAPERS: [(&str, &str); 3] = [
    ("[P1]", "https://arxiv.org/abs/1911.07626"),
    ("[P2]", "https://arxiv.org/abs/2007.01452"),
    ("[P3]", "https://arxiv.org/abs/1910.11508"),
];

/// The anchor GitHub (and most Markdown renderers) give a heading: lower case, letters, digits, `-` and
/// `_` kept, spaces turned into `-`, everything else dropped (`4.4 Optimality conditions [derived]` →
/// `44-optimality-conditions-derived`).
pub fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The sections of a claim's `section` field (`§4.1, §4.4`) with the anchors of their headings in
/// math.md (`("§4.1", "41-two-level-networks-p3-derived")`); a section without a heading has no anchor.
pub fn section_anchors(sections: &str) -> Vec<(String, Option<String>)> {
    sections
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let number = s.trim_start_matches('§');
            // "## 5. Title" for a chapter, "### 4.4 Title" for a section.
            let anchor = MATH.lines().find_map(|l| {
                let text = l.trim_start_matches('#');
                if text.len() == l.len() {
                    return None;
                }
                let text = text.trim_start();
                text.strip_prefix(number)
                    .filter(|r| r.starts_with(". ") || r.starts_with(' '))
                    .map(|_| heading_anchor(text))
            });
            (s, anchor)
        })
        .collect()
}

impl Source {
    /// The docs page's "A failure would mean" paragraph, without its heading.
    pub fn failure_meaning(&self) -> Option<&'static str> {
        let key = "**A failure would mean**";
        let start = self.text.find(key)? + key.len();
        let rest = &self.text[start..];
        let end = rest.find("\n\n").unwrap_or(rest.len());
        Some(rest[..end].trim_start_matches([':', ' ']).trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_anchors_are_the_headings_of_math_md() {
        assert_eq!(
            heading_anchor("4.4 Optimality conditions and \"effective features\" [derived]"),
            "44-optimality-conditions-and-effective-features-derived"
        );
        let a = section_anchors("§4.1, §5");
        assert_eq!(a.len(), 2);
        assert!(
            a[0].1.as_deref().is_some_and(|x| x.starts_with("41-")),
            "{a:?}"
        );
        assert!(
            a[1].1.as_deref().is_some_and(|x| x.starts_with("5-")),
            "{a:?}"
        );
        assert_eq!(section_anchors("§9.9")[0].1, None);
        for c in super::super::registry() {
            let s = source(c.info.id).unwrap();
            for (sec, anchor) in section_anchors(s.section) {
                assert!(
                    anchor.is_some(),
                    "{}: {sec} has no heading in math.md",
                    c.info.id
                );
            }
        }
    }

    #[test]
    fn every_registered_claim_has_a_source_and_a_failure_paragraph() {
        for c in super::super::registry() {
            let s = source(c.info.id).unwrap_or_else(|| panic!("{} has no source", c.info.id));
            let heading = s.text.lines().next().unwrap_or("");
            assert!(
                heading.starts_with(&format!("# {} ", c.info.id)),
                "{}: docs page {} starts with {heading:?}",
                c.info.id,
                s.doc
            );
            let meaning = s.failure_meaning().unwrap_or("");
            assert!(meaning.len() > 20, "{}: no failure paragraph", c.info.id);
        }
        assert!(source("C99").is_none());
    }
}
