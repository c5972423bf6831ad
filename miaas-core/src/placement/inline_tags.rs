//! [`InlineTags`]: a node's tags copied into its placement candidate, so that
//! checking them reads no other memory (placement reads every node).

/// Short tag lists kept inside the candidate: each tag as its length (one byte)
/// then its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InlineTags {
    /// Bytes used, or [`InlineTags::TOO_LONG`].
    len: u8,
    bytes: [u8; 47],
}

impl Default for InlineTags {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; 47],
        }
    }
}

impl InlineTags {
    const TOO_LONG: u8 = u8::MAX;

    pub(crate) fn of(tags: &[String]) -> Self {
        let mut inline = Self::default();
        let mut at = 0;
        for tag in tags {
            let end = at + 1 + tag.len();
            match u8::try_from(tag.len()) {
                Ok(len) if end <= inline.bytes.len() => {
                    inline.bytes[at] = len;
                    inline.bytes[at + 1..end].copy_from_slice(tag.as_bytes());
                    at = end;
                }
                _ => {
                    inline.len = Self::TOO_LONG;
                    return inline;
                }
            }
        }
        // at most 47: it fits in a byte
        inline.len = at as u8;
        inline
    }

    /// Whether `tag` is one of the tags; `None` when they did not fit.
    pub(crate) fn contains(&self, tag: &[u8]) -> Option<bool> {
        let mut rest = self.bytes.get(..usize::from(self.len))?;
        while let Some((&len, after)) = rest.split_first() {
            let (current, next) = after.split_at_checked(usize::from(len))?;
            if current == tag {
                return Some(true);
            }
            rest = next;
        }
        Some(false)
    }
}
