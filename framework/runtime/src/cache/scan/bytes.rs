//! The JSON primitives of the scanner: whitespace, keys, strings and skipping a value with its
//! brackets matched (eight bytes at a time where no structure is found).
//!
//! Mirrors no client-go counterpart (client-go decodes with `json.Unmarshal`): the scanner's JSON primitives.

use super::{MAX_DEPTH, Result, ScanError};

#[inline]
pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline]
pub(super) fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !is_ws(c) {
            break;
        }
        i += 1;
    }
    i
}

pub(super) fn expect(b: &[u8], i: usize, c: u8, message: &'static str) -> Result<()> {
    if b.get(i) == Some(&c) { Ok(()) } else { Err(ScanError::at(message, i)) }
}

/// A member's key (content between the quotes, and whether it has escapes) and where its value
/// starts; `i` is at the key's opening quote.
pub(super) fn member_head(b: &[u8], i: usize) -> Result<(&[u8], bool, usize)> {
    expect(b, i, b'"', "expected a key")?;
    let (key_end, escaped) = string_end(b, i)?;
    let colon = ws(b, key_end);
    expect(b, colon, b':', "expected ':' after a key")?;
    let value = ws(b, colon + 1);
    if value >= b.len() {
        return Err(ScanError::at("unexpected end after ':'", value));
    }
    Ok((&b[i + 1..key_end - 1], escaped, value))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` equal to `byte`, as their high bits (exact for the lowest one; a higher
/// false positive may follow a true one, and only the lowest is used).
#[inline(always)]
fn bytes_equal(w: u64, byte: u8) -> u64 {
    let x = w ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The 8 bytes at `j`, if there are 8.
#[inline(always)]
fn word(b: &[u8], j: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(j..j + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The end (after the closing quote) of the string at `b[i] == '"'`, and whether it has escapes.
#[inline]
pub(super) fn string_end(b: &[u8], i: usize) -> Result<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time up to the next quote or backslash.
        while let Some(w) = word(b, j) {
            let hits = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
            if hits != 0 {
                j += (hits.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match b.get(j) {
            Some(b'"') => return Ok((j + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                j += 2;
            }
            Some(_) => j += 1,
            None => return Err(ScanError::at("unterminated string", i)),
        }
    }
}

/// The next quote or bracket at or after `j` (or `b.len()`).
#[inline(always)]
fn next_structural(b: &[u8], mut j: usize) -> usize {
    while let Some(w) = word(b, j) {
        // `[`/`]` become `{`/`}` with bit 5 set; no other byte does.
        let folded = w | (ONES * 0x20);
        let hits = bytes_equal(w, b'"') | bytes_equal(folded, b'{') | bytes_equal(folded, b'}');
        if hits != 0 {
            return j + (hits.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while let Some(&c) = b.get(j) {
        if CLASS[c as usize] != 0 {
            break;
        }
        j += 1;
    }
    j
}

/// Byte classes of [`skip_container`]'s scan: 0 for bytes without structure.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'{' as usize] = 2;
    t[b'[' as usize] = 3;
    t[b'}' as usize] = 4;
    t[b']' as usize] = 5;
    t
};

/// The end of the value starting at `b[i]` (not whitespace).
pub(super) fn skip_value(b: &[u8], i: usize) -> Result<usize> {
    match b.get(i) {
        Some(b'"') => string_end(b, i).map(|(end, _)| end),
        Some(b'{') | Some(b'[') => skip_container(b, i),
        Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            let mut j = i + 1;
            while let Some(&c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b':' | b'"' | b'{' | b'[') || is_ws(c) {
                    break;
                }
                j += 1;
            }
            Ok(j)
        }
        Some(_) => Err(ScanError::at("unexpected character", i)),
        None => Err(ScanError::at("unexpected end", i)),
    }
}

/// The end of the object or array at `b[i]`, brackets matched, strings skipped.
fn skip_container(b: &[u8], i: usize) -> Result<usize> {
    // One bit per open bracket: 1 for '{', 0 for '['.
    let mut stack: u128 = 0;
    let mut depth = 0usize;
    let mut j = i;
    loop {
        j = next_structural(b, j);
        let Some(&c) = b.get(j) else {
            return Err(ScanError::at("unterminated object or array", i));
        };
        match CLASS[c as usize] {
            1 => {
                j = string_end(b, j)?.0;
                continue;
            }
            2 | 3 => {
                if depth >= MAX_DEPTH {
                    return Err(ScanError::at("nested too deeply", j));
                }
                stack = (stack << 1) | u128::from(c == b'{');
                depth += 1;
            }
            _ => {
                let object = stack & 1 == 1;
                if depth == 0 || object != (c == b'}') {
                    return Err(ScanError::at("mismatched bracket", j));
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
        }
        j += 1;
    }
}
