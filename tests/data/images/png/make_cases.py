# Makes PNG test images of every colour type and bit depth (plain and Adam7-interlaced, with tRNS, and with EXIF or XMP
# orientation in the chunks Pillow reads it from) and what Pillow reads from them (load_image's path: open,
# exif_transpose, convert("RGB")) as raw RGB bytes beside each file, plus cases.txt: "name width height" of that result.
# The files are written by hand (struct + zlib, every filter type used in turn) because Pillow cannot write most of
# these depths. Run from the repository root with Debian 12's python3-pil (Pillow 9.4.0):
#   /usr/bin/python3 tests/data/images/png/make_cases.py
import os
import random
import struct
import zlib

from PIL import Image, ImageOps

out = os.path.dirname(os.path.abspath(__file__))
W, H = 29, 19  # odd sides: partial bytes at low depths, every Adam7 pass non-empty
rng = random.Random(20261130)
base = Image.open(os.path.join(out, "..", "samples-v1", "03-red-circle.png")).convert("RGBA").resize((W, H))
base.putalpha(Image.linear_gradient("L").resize((W, H)))


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def samples(channels, depth):
    """Rows of sample tuples: the picture scaled to the depth, with random low bits at 16 bits (no multiples of 257)."""
    top = (1 << depth) - 1
    rows = []
    for y in range(H):
        row = []
        for x in range(W):
            r, g, b, a = base.getpixel((x, y))
            grey = (r * 299 + g * 587 + b * 114) // 1000
            values = {1: (grey,), 2: (grey, a), 3: (r, g, b), 4: (r, g, b, a)}[channels]
            if depth == 16:
                row.append(tuple(v << 8 | rng.randrange(256) for v in values))
            else:
                row.append(tuple(v * top // 255 for v in values))
        rows.append(row)
    return rows


def pack(row, depth):
    flat = [v for px in row for v in px]
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in flat)
    if depth == 8:
        return bytes(flat)
    per = 8 // depth
    out_bytes = bytearray()
    for i in range(0, len(flat), per):
        group = flat[i:i + per]
        byte = 0
        for k, v in enumerate(group):
            byte |= v << (8 - depth * (k + 1))
        out_bytes.append(byte)
    return bytes(out_bytes)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filtered(lines, bpp, first_filter):
    """Each line filtered with filter type (first_filter + line number) % 5, so all five types are exercised."""
    data = bytearray()
    prev = bytes(len(lines[0])) if lines else b""
    for n, line in enumerate(lines):
        f = (first_filter + n) % 5
        data.append(f)
        for i, x in enumerate(line):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            data.append((x - (0, a, b, (a + b) // 2, paeth(a, b, c))[f]) & 255)
        prev = line
    return bytes(data)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(color_type, depth, rows, interlace=False, before=(), after=(), palette=None, trns=None):
    bpp = max(1, len(rows[0][0]) * depth // 8)
    if interlace:
        idat = b""
        for p, (x0, y0, dx, dy) in enumerate(ADAM7):
            lines = [pack(rows[y][x0::dx], depth) for y in range(y0, H, dy) if x0 < W]
            idat += filtered(lines, bpp, p)
    else:
        idat = filtered([pack(r, depth) for r in rows], bpp, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, int(interlace)))
    data += b"".join(chunk(k, v) for k, v in before)
    if palette:
        data += chunk(b"PLTE", bytes(v for rgb in palette for v in rgb))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    return data + chunk(b"IDAT", zlib.compress(idat, 9)) + b"".join(chunk(k, v) for k, v in after) + chunk(b"IEND", b"")


def palette_case(depth, with_trns=False, interlace=False):
    n = 1 << depth
    palette = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(n)]
    rows = [[((x * 7 + y * 3) % n,) for x in range(W)] for y in range(H)]
    trns = bytes(rng.randrange(256) for _ in range(n - 1)) if with_trns else None  # shorter than the palette, as allowed
    return png(3, depth, rows, interlace, palette=palette, trns=trns)


def exif(orientation=None, big_endian=False):
    """A TIFF-structured EXIF block: IFD0 with Orientation (when given) and a Software string."""
    e = ">" if big_endian else "<"
    entries = [(0x0131, 2, 5, struct.pack(e + "I", 26 + 12 * 2))]  # Software "test\0", stored after the IFD
    if orientation is not None:
        entries.insert(0, (0x0112, 3, 1, struct.pack(e + "HH", orientation, 0)))
    ifd = struct.pack(e + "H", len(entries)) + b"".join(struct.pack(e + "HHI", t, k, n) + v for t, k, n, v in entries)
    body = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + ifd + struct.pack(e + "I", 0)
    body = body.ljust(26 + 12 * 2, b"\0")
    return body + b"test\0"


def raw_profile(block):
    """ImageMagick's "Raw profile type exif" text: a blank line, the name, the length, then hex lines."""
    h = block.hex()
    return b"\nexif\n%8d\n" % len(block) + b"\n".join(h[i:i + 72].encode() for i in range(0, len(h), 72)) + b"\n"


def xmp(orientation, element=False):
    o = f"<tiff:Orientation>{orientation}</tiff:Orientation>" if element else f'tiff:Orientation="{orientation}"'
    inner = o if element else ""
    attr = "" if element else " " + o
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
            f' xmlns:tiff="http://ns.adobe.com/tiff/1.0/"{attr}>{inner}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()


def itxt(key, text, compressed=False):
    return key + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + (zlib.compress(text) if compressed else text)


XMP_KEY = b"XML:com.adobe.xmp"
RGB8 = samples(3, 8)

cases = {}
for interlace in (False, True):
    suffix = "-adam7" if interlace else ""
    for depth in (1, 2, 4, 8, 16):
        cases[f"grey{depth}{suffix}.png"] = png(0, depth, samples(1, depth), interlace)
        if depth < 16:
            cases[f"palette{depth}{suffix}.png"] = palette_case(depth, interlace=interlace)
    for depth in (8, 16):
        cases[f"grey-alpha{depth}{suffix}.png"] = png(4, depth, samples(2, depth), interlace)
        cases[f"rgb{depth}{suffix}.png"] = png(2, depth, samples(3, depth), interlace)
        cases[f"rgba{depth}{suffix}.png"] = png(6, depth, samples(4, depth), interlace)
    cases[f"palette4-trns{suffix}.png"] = palette_case(4, True, interlace)
    cases[f"palette8-trns{suffix}.png"] = palette_case(8, True, interlace)
    cases[f"grey2-trns{suffix}.png"] = png(0, 2, samples(1, 2), interlace, trns=struct.pack(">H", 1))
    cases[f"grey8-trns{suffix}.png"] = png(0, 8, samples(1, 8), interlace, trns=struct.pack(">H", 200))
    cases[f"grey16-trns{suffix}.png"] = png(0, 16, samples(1, 16), interlace, trns=struct.pack(">H", 0x1234))
    cases[f"rgb8-trns{suffix}.png"] = png(2, 8, RGB8, interlace, trns=struct.pack(">HHH", *RGB8[9][14]))
    cases[f"rgb16-trns{suffix}.png"] = png(2, 16, samples(3, 16), interlace, trns=struct.pack(">HHH", 1, 2, 3))

# Orientation: EXIF in eXIf (before or after the image data) or in ImageMagick's raw-profile text; XMP in iTXt/tEXt.
cases.update({
    "exif6.png": png(2, 8, RGB8, before=[(b"eXIf", exif(6))]),
    "exif3-after-idat.png": png(2, 8, RGB8, after=[(b"eXIf", exif(3, big_endian=True))]),
    "exif8-raw-profile-text.png": png(2, 8, RGB8, before=[(b"tEXt", b"Raw profile type exif\0" + raw_profile(b"Exif\0\0" + exif(8)))]),
    "exif5-raw-profile-ztxt.png": png(2, 8, RGB8, after=[(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(raw_profile(b"Exif\0\0" + exif(5))))]),
    "xmp6.png": png(2, 8, RGB8, before=[(b"iTXt", itxt(XMP_KEY, xmp(6)))]),
    "xmp7-element.png": png(2, 8, RGB8, after=[(b"iTXt", itxt(XMP_KEY, xmp(7, element=True), compressed=True))]),
    "xmp2-text.png": png(2, 8, RGB8, before=[(b"tEXt", XMP_KEY + b"\0" + xmp(2))]),
    "exif-none-xmp8.png": png(2, 8, RGB8, before=[(b"eXIf", exif(None)), (b"iTXt", itxt(XMP_KEY, xmp(8)))]),
    "exif1-xmp6.png": png(2, 8, RGB8, before=[(b"eXIf", exif(1)), (b"iTXt", itxt(XMP_KEY, xmp(6)))]),
    "exif-none-then-xmp6-after-idat.png": png(2, 8, RGB8, before=[(b"eXIf", exif(None))], after=[(b"iTXt", itxt(XMP_KEY, xmp(6)))]),
    "exif4-then-exif6-after-idat.png": png(2, 8, RGB8, before=[(b"eXIf", exif(4))], after=[(b"eXIf", exif(6))]),
})
# An interlaced palette image with its orientation in an eXIf chunk right after IHDR (before PLTE).
d = palette_case(4, True, True)
cases["exif6-adam7-palette.png"] = d[:33] + chunk(b"eXIf", exif(6)) + d[33:]

with open(os.path.join(out, "cases.txt"), "w") as listing:
    for name, data in cases.items():
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(data)
        opened = Image.open(path)
        mode = opened.mode
        im = ImageOps.exif_transpose(opened).convert("RGB")
        with open(path + ".rgb", "wb") as f:
            f.write(im.tobytes())
        listing.write(f"{name} {im.size[0]} {im.size[1]}\n")
        print(name, mode, im.size)
