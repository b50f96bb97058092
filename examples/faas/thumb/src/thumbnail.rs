//! The faas example's function: a thumbnail of a PPM (`P6`) or PGM (`P5`) image, std only.
//! Also `#[path]`-included by `aex-proto-bench`'s `metering` bench, which measures the
//! metering's overhead on it.

/// The longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: usize = 64;
/// The largest image taken: 4096 × 4096 pixels (48 MiB of RGB; the HTTP server takes 1 MiB).
pub const MAX_SIDE: usize = 4096;

/// Decodes a binary PPM or PGM image (maxval 255) and scales it down so that its longer side is
/// at most [`THUMB_SIDE`], averaging each source box (an image already that small is returned
/// as it is, re-encoded). Answers the thumbnail in the same format, or why the input is not an
/// image it takes.
pub fn thumbnail(input: &[u8]) -> Result<Vec<u8>, String> {
    let image = Image::decode(input)?;
    Ok(image.scaled().encode())
}

/// An 8-bit image, `channels` bytes per pixel (1: gray, 3: RGB), rows top to bottom.
pub struct Image<'a> {
    width: usize,
    height: usize,
    channels: usize,
    pixels: std::borrow::Cow<'a, [u8]>,
}

impl<'a> Image<'a> {
    /// Reads a `P5` or `P6` header (whitespace and `#` comments between its fields) and
    /// borrows the pixels after it.
    pub fn decode(input: &'a [u8]) -> Result<Image<'a>, String> {
        let mut at = 0;
        let magic = field(input, &mut at, "the magic number")?;
        let channels = match magic {
            b"P5" => 1,
            b"P6" => 3,
            _ => {
                return Err("not a binary PGM or PPM image: it must start with `P5` or `P6`".into())
            }
        };
        let width = number(input, &mut at, "the width")?;
        let height = number(input, &mut at, "the height")?;
        let maxval = number(input, &mut at, "the maximum value")?;
        if maxval != 255 {
            return Err(format!(
                "maximum value {maxval}: only 8-bit images (255) are taken"
            ));
        }
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!(
                "{width} × {height} pixels: each side must be 1 to {MAX_SIDE}"
            ));
        }
        // Exactly one whitespace byte ends the header.
        at += 1;
        let want = width * height * channels;
        let pixels = input.get(at..).unwrap_or_default();
        if pixels.len() != want {
            return Err(format!(
                "{width} × {height} × {channels} needs {want} bytes of pixels after the header, the image has {}",
                pixels.len()
            ));
        }
        Ok(Image {
            width,
            height,
            channels,
            pixels: pixels.into(),
        })
    }

    /// The image scaled down to at most [`THUMB_SIDE`] on its longer side, each target pixel
    /// the average of the source box it covers.
    pub fn scaled(&self) -> Image<'static> {
        let longer = self.width.max(self.height);
        let (tw, th) = if longer <= THUMB_SIDE {
            (self.width, self.height)
        } else {
            (
                (self.width * THUMB_SIDE / longer).max(1),
                (self.height * THUMB_SIDE / longer).max(1),
            )
        };
        let c = self.channels;
        let mut out = vec![0u8; tw * th * c];
        let mut sums = vec![0u32; c];
        for ty in 0..th {
            let (y0, y1) = (ty * self.height / th, (ty + 1) * self.height / th);
            for tx in 0..tw {
                let (x0, x1) = (tx * self.width / tw, (tx + 1) * self.width / tw);
                sums.iter_mut().for_each(|s| *s = 0);
                for y in y0..y1 {
                    let row = &self.pixels[(y * self.width + x0) * c..(y * self.width + x1) * c];
                    for px in row.chunks_exact(c) {
                        for (s, v) in sums.iter_mut().zip(px) {
                            *s += u32::from(*v);
                        }
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as u32;
                let at = (ty * tw + tx) * c;
                for (o, s) in out[at..at + c].iter_mut().zip(&sums) {
                    // Rounded average; at most 255.
                    *o = ((s + n / 2) / n) as u8;
                }
            }
        }
        Image {
            width: tw,
            height: th,
            channels: c,
            pixels: out.into(),
        }
    }

    /// The image as binary PGM or PPM.
    pub fn encode(&self) -> Vec<u8> {
        let magic = if self.channels == 1 { "P5" } else { "P6" };
        let mut out = format!("{magic}\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }

    /// `(width, height)`.
    #[allow(
        dead_code,
        reason = "for the tests and benchmarks that include this file"
    )]
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }
}

/// The next header field: skips whitespace and comments, answers the bytes up to the next
/// whitespace.
fn field<'a>(input: &'a [u8], at: &mut usize, what: &str) -> Result<&'a [u8], String> {
    loop {
        match input.get(*at) {
            Some(b) if b.is_ascii_whitespace() => *at += 1,
            Some(b'#') => {
                while input.get(*at).is_some_and(|b| *b != b'\n') {
                    *at += 1;
                }
            }
            Some(_) => break,
            None => return Err(format!("the header ends before {what}")),
        }
    }
    let start = *at;
    while input.get(*at).is_some_and(|b| !b.is_ascii_whitespace()) {
        *at += 1;
    }
    if *at >= input.len() {
        return Err(format!("the header ends after {what}"));
    }
    Ok(&input[start..*at])
}

fn number(input: &[u8], at: &mut usize, what: &str) -> Result<usize, String> {
    let text = field(input, at, what)?;
    std::str::from_utf8(text)
        .ok()
        .filter(|t| t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            format!(
                "{what} is `{}`, not a whole number of at most 5 digits",
                String::from_utf8_lossy(&text[..text.len().min(16)])
            )
        })
}

/// A `width × height` PPM test picture (gradients and a checkerboard), for examples, tests and
/// benchmarks.
#[allow(
    dead_code,
    reason = "for the tests and benchmarks that include this file"
)]
pub fn test_picture(width: usize, height: usize) -> Vec<u8> {
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    for y in 0..height {
        for x in 0..width {
            let check = if (x / 16 + y / 16) % 2 == 0 { 200 } else { 40 };
            out.extend_from_slice(&[(x * 255 / width) as u8, (y * 255 / height) as u8, check]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{test_picture, thumbnail, Image};

    #[test]
    fn scales_the_longer_side_to_the_thumbnail_size_averaging_boxes() {
        let thumb = thumbnail(&test_picture(640, 320)).unwrap();
        let image = Image::decode(&thumb).unwrap();
        assert_eq!(image.size(), (64, 32));
        // A 10 × 10 box of a 16-pixel checkerboard: its first box is all 200 in blue.
        assert_eq!(image.pixels[2], 200);
        // Gray, 2 × 2 into itself (already small).
        let gray = b"P5\n# a comment\n2 2\n255\n\x00\x10\x20\x30";
        assert_eq!(thumbnail(gray).unwrap(), b"P5\n2 2\n255\n\x00\x10\x20\x30");
        // A 4 × 1 image averaged by twos would need more than 64 sides; a 128 × 1 one halves.
        let wide = [b"P5 128 1 255\n".as_slice(), &[10u8, 20].repeat(64)].concat();
        let thumb = thumbnail(&wide).unwrap();
        assert_eq!(&thumb[thumb.len() - 64..], &[15u8; 64]);
    }

    #[test]
    fn refuses_what_is_not_an_image_it_takes_and_never_panics() {
        for (input, says) in [
            (&b"GIF89a\n"[..], "must start with `P5` or `P6`"),
            (b"P6 2 2 65535\n", "only 8-bit"),
            (b"P6 0 2 255\n", "each side must be 1 to 4096"),
            (b"P6 9999 2 255\n", "each side must be 1 to 4096"),
            (b"P6 2 x 255\n", "the height is `x`"),
            (b"P6 2 2 255\nabc", "needs 12 bytes"),
            (b"P6 2", "the header ends"),
            (b"", "the header ends before the magic number"),
        ] {
            let e = thumbnail(input).unwrap_err();
            assert!(e.contains(says), "{e:?} for {input:?}");
        }
        // Every prefix of a valid image is refused, none panics.
        let image = test_picture(8, 8);
        for n in 0..image.len() {
            assert!(thumbnail(&image[..n]).is_err());
        }
    }
}
