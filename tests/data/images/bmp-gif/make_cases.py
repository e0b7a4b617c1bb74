# Makes BMP and GIF test files by hand (Pillow cannot write RLE, OS/2 or bitfield BMPs, nor odd GIFs) and records what
# Pillow reads from them (load_image's path: open, exif_transpose, convert("RGB")) as raw RGB bytes beside each file
# (X.bmp.rgb, row-major, 3 bytes a pixel). cases.tsv lists every file: "name<TAB>width<TAB>height" when Pillow reads it,
# "name<TAB>refused<TAB>Pillow's error" when Pillow refuses it (then we must refuse it too).
# Run from the repository root with Debian 12's python3-pil (Pillow 9.4.0):
#   /usr/bin/python3 tests/data/images/bmp-gif/make_cases.py
import os
import random
import struct

import PIL
from PIL import Image, ImageOps

assert PIL.__version__ == "9.4.0", PIL.__version__
out = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(15)
W, H = 13, 7  # odd sizes: row padding and interlace passes are exercised


def palette(n):
    return [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(n)]


def indices(n, w=W, h=H):
    return [[rng.randrange(n) for _ in range(w)] for _ in range(h)]


# ---------------------------------------------------------------------------------------------------------------- BMP

def pack_row(row, bits):
    if bits == 8:
        b = bytes(row)
    elif bits in (1, 4):
        per = 8 // bits
        b = bytearray()
        for i in range(0, len(row), per):
            v = 0
            for k in range(per):
                v = (v << bits) | (row[i + k] if i + k < len(row) else 0)
            b.append(v)
        b = bytes(b)
    elif bits == 24:
        b = b"".join(struct.pack("BBB", bl, g, r) for r, g, bl in row)
    elif bits == 16:
        b = b"".join(struct.pack("<H", v) for v in row)
    elif bits == 32:
        b = b"".join(struct.pack("<I", v) for v in row)
    return b + b"\0" * (-len(b) % 4)


def raster(rows, bits, top_down=False):
    return b"".join(pack_row(r, bits) for r in (rows if top_down else rows[::-1]))


def bmp(width, height, bits, pixels, pal=(), header=40, compression=0, colors=None, masks=None, offset=None,
        gap=b"", entry=None, offset_field=None):
    """A BMP file: file header, info header (12, 40, 64, 108 or 124 bytes), masks after a 40-byte header, palette,
    `gap`, then the pixel data at `offset` (default: right after the gap)."""
    entry = entry or (3 if header == 12 else 4)
    if header == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        info = struct.pack("<IiiHHIIiiII", header, width, height, 1, bits, compression, len(pixels), 2835, 2835,
                           len(pal) if colors is None else colors, 0)
        extra = b""
        if header >= 108:
            extra = struct.pack("<4I", *(masks or (0, 0, 0, 0)))
        info += extra + b"\0" * (header - len(info) - len(extra))
        if header == 40 and masks:
            info += struct.pack("<3I", *masks[:3])
    pal_bytes = b"".join(bytes((b, g, r)) + b"\0" * (entry - 3) for r, g, b in pal)
    start = 14 + len(info) + len(pal_bytes) + len(gap)
    offset = start if offset is None else offset
    body = info + pal_bytes + gap
    body += b"\0" * max(0, offset - 14 - len(body))
    field = offset if offset_field is None else offset_field
    data = b"BM" + struct.pack("<IHHI", 14 + len(body) + len(pixels), 0, 0, field) + body[: offset - 14] + pixels
    return data


def rle(ops):
    """RLE8/RLE4 bytes from ops: ("run", n, value), ("abs", [values], rle4), ("eol",), ("eob",), ("delta", a, b, c, d)."""
    b = bytearray()
    for op in ops:
        if op[0] == "run":
            b += bytes((op[1], op[2]))
        elif op[0] == "abs":
            vals, rle4 = op[1], op[2]
            b += bytes((0, len(vals)))
            if rle4:
                data = bytes(((vals[i] << 4) | (vals[i + 1] if i + 1 < len(vals) else 0)) for i in range(0, len(vals), 2))
            else:
                data = bytes(vals)
            b += data + b"\0" * (len(data) % 2)
        elif op[0] == "eol":
            b += b"\0\0"
        elif op[0] == "eob":
            b += b"\0\1"
        elif op[0] == "delta":
            b += bytes((0, 2)) + bytes(op[1:])
        elif op[0] == "raw":
            b += bytes(op[1])
    return bytes(b)


def rle_rows(rows, rle4, runs=True):
    """Encodes rows (bottom row first as BMP stores them) with a mix of runs and absolute stretches, EOL after each."""
    ops = []
    for row in rows:
        x = 0
        while x < len(row):
            n = 1
            while x + n < len(row) and row[x + n] == row[x] and n < 255:
                n += 1
            if runs and n >= 2:
                ops.append(("run", n, (row[x] << 4 | row[x]) if rle4 else row[x]))
                x += n
            else:
                # Pillow 9.4 drops the last pixel of an odd RLE4 absolute stretch (rle4-odd-absolute.bmp covers it)
                take = min(len(row) - x, 4 if rle4 else rng.choice((3, 4, 5)))
                if take < 3:
                    for v in row[x:x + take]:
                        ops.append(("run", 1, (v << 4 | v) if rle4 else v))
                else:
                    ops.append(("abs", row[x:x + take], rle4))
                x += take
        ops.append(("eol",))
    return ops + [("eob",)]


def runny(n, w=W, h=H):
    rows = []
    for _ in range(h):
        row = []
        while len(row) < w:
            row += [rng.randrange(n)] * rng.choice((1, 1, 2, 3, 5))
        rows.append(row[:w])
    return rows


cases = {}
p256, p16, p2 = palette(256), palette(16), palette(2)
grey = [(i, i, i) for i in range(256)]

# Uncompressed palette images, bottom-up and top-down, with full, short and long palettes.
cases["pal8.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256)
cases["pal8-topdown.bmp"] = bmp(W, -H, 8, raster(indices(256), 8, top_down=True), p256)
cases["pal4-topdown.bmp"] = bmp(W, -H, 4, raster(indices(16), 4, top_down=True), p16)
cases["pal1.bmp"] = bmp(W, H, 1, raster(indices(2), 1), p2)
cases["pal1-topdown.bmp"] = bmp(W, -H, 1, raster(indices(2), 1, top_down=True), p2)
cases["pal1-blackwhite.bmp"] = bmp(W, H, 1, raster(indices(2), 1), [(0, 0, 0), (255, 255, 255)])
cases["pal8-grey.bmp"] = bmp(W, H, 8, raster(indices(256), 8), grey)
cases["pal8-short-palette.bmp"] = bmp(W, H, 8, raster(indices(256), 8), palette(20))  # indices >= 20: bad
cases["pal8-short-grey-palette.bmp"] = bmp(W, H, 8, raster(indices(256), 8), grey[:10])  # greyscale -> mode L
cases["pal4-long-palette.bmp"] = bmp(W, H, 4, raster(indices(16), 4), palette(40))
cases["pal8-colors-0.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256, colors=0)
cases["pal8-palette-over-256.bmp"] = bmp(W, H, 8, raster(indices(256), 8), palette(300))
# bfOffBits pointing at the palette: Pillow adds 4 bytes a colour (also for OS/2 1.x's 3-byte entries).
cases["pal8-offset-at-header-end.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256, offset_field=14 + 40)
cases["os2v1-offset-at-header-end.bmp"] = bmp(W, H, 4, raster(indices(16), 4), p16, header=12, gap=b"\x55" * 16,
                                              offset_field=14 + 12)
cases["pal8-gap-before-pixels.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256, gap=b"\xAA" * 7)
cases["pal2bit.bmp"] = bmp(W, H, 2, raster(indices(4), 4), palette(4))
# OS/2 1.x (12-byte header, 3-byte palette entries) and OS/2 2.x (64-byte header).
cases["os2v1-pal8.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256, header=12)
cases["os2v1-pal4.bmp"] = bmp(W, H, 4, raster(indices(16), 4), p16, header=12)
cases["os2v1-pal1.bmp"] = bmp(W, H, 1, raster(indices(2), 1), p2, header=12)
cases["os2v1-rgb24.bmp"] = bmp(W, H, 24, raster([[tuple(rng.randrange(256) for _ in "rgb") for _ in range(W)]
                                                 for _ in range(H)], 24), header=12)
cases["os2v2-pal8.bmp"] = bmp(W, H, 8, raster(indices(256), 8), p256, header=64)
cases["os2v2-rle8.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(256), False)), p256, header=64, compression=1)
# True colour: 24-bit at an odd offset, 32-bit BGRX, 16-bit 555 (no compression) and bitfields.
rgb_rows = [[tuple(rng.randrange(256) for _ in "rgb") for _ in range(W)] for _ in range(H)]
cases["rgb24.bmp"] = bmp(W, H, 24, raster(rgb_rows, 24))
cases["rgb24-odd-offset.bmp"] = bmp(W, H, 24, raster(rgb_rows, 24), gap=b"\0" * 3)
cases["rgb24-topdown.bmp"] = bmp(W, -H, 24, raster(rgb_rows, 24, top_down=True))
cases["bgrx32.bmp"] = bmp(W, H, 32, raster([[rng.randrange(1 << 32) for _ in range(W)] for _ in range(H)], 32))
all16 = [[rng.randrange(1 << 16) for _ in range(W)] for _ in range(H)]
cases["rgb555.bmp"] = bmp(W, H, 16, raster(all16, 16))
cases["rgb555-bitfields.bmp"] = bmp(W, H, 16, raster(all16, 16), compression=3, masks=(0x7C00, 0x3E0, 0x1F))
cases["rgb565-bitfields.bmp"] = bmp(W, H, 16, raster(all16, 16), compression=3, masks=(0xF800, 0x7E0, 0x1F))
cases["rgb565-v4.bmp"] = bmp(W, -H, 16, raster(all16, 16, top_down=True), header=108, compression=3,
                             masks=(0xF800, 0x7E0, 0x1F, 0))
all32 = [[rng.randrange(1 << 32) for _ in range(W)] for _ in range(H)]
cases["rgba32-v5.bmp"] = bmp(W, H, 32, raster(all32, 32), header=124, compression=3,
                             masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))
cases["xbgr32-bitfields.bmp"] = bmp(W, H, 32, raster(all32, 32), compression=3, masks=(0xFF000000, 0xFF0000, 0xFF00))
cases["rgb565-odd-masks.bmp"] = bmp(W, H, 16, raster(all16, 16), compression=3, masks=(0xF000, 0xF00, 0xF0))
# RLE8 / RLE4: runs, absolute stretches, end of line, end of bitmap, deltas, runs past the row, top-down.
cases["rle8.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(256), False)), p256, compression=1)
cases["rle8-topdown.bmp"] = bmp(W, -H, 8, rle(rle_rows(runny(256), False)), p256, compression=1)
cases["rle8-grey.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(256), False)), grey, compression=1)
cases["rle4.bmp"] = bmp(W, H, 4, rle(rle_rows(runny(16), True)), p16, compression=2)
cases["rle4-odd-offset.bmp"] = bmp(W, H, 4, rle(rle_rows(runny(16), True)), p16, compression=2, gap=b"\0")
cases["rle8-odd-offset.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(256), False)), p256, compression=1, gap=b"\0")
# EOL early on every row (the rest of the row is index 0), and a run longer than the row (cut at the row's end).
cases["rle8-short-rows.bmp"] = bmp(W, H, 8, rle(
    [op for y in range(H) for op in (("run", 4, y + 1), ("abs", [9, 8, 7], False), ("eol",))]), p256, compression=1)
cases["rle8-long-run.bmp"] = bmp(W, H, 8, rle(
    [op for y in range(H) for op in (("run", 10, y + 1), ("run", 200, 50), ("eol",))]), p256, compression=1)
# Absolute stretches longer than the row spill into the next row.
cases["rle8-long-absolute.bmp"] = bmp(W, H, 8, rle(
    [("abs", list(range(1, 20)), False), ("abs", list(range(30, 102)), False), ("eob",)]), p256, compression=1)
# Delta ("skip", which some writers use for transparency): Pillow 9.4 reads two bytes more than the escape's own two.
cases["rle8-delta.bmp"] = bmp(W, H, 8, rle(
    [("run", 3, 5), ("delta", 9, 9, 4, 1), ("run", 6, 7), ("eol",), ("run", 13, 3), ("delta", 1, 1, 2, 2),
     ("run", 13, 4), ("eol",), ("run", 13, 8), ("run", 13, 9), ("eob",)]), p256, compression=1)
cases["rle4-delta.bmp"] = bmp(W, H, 4, rle(
    [("run", 3, 0x56), ("delta", 0, 0, 4, 2), ("run", 13, 0x12), ("eol",), ("run", 13, 0x34), ("eol",),
     ("run", 13, 0x78), ("eol",), ("run", 13, 0x9A), ("eob",)]), p16, compression=2)
cases["rle4-delta-short.bmp"] = bmp(W, H, 4, rle(
    [("run", 3, 0x56), ("delta", 0, 0, 4, 2), ("run", 13, 0x12), ("eol",), ("run", 13, 0x34), ("run", 13, 0x78),
     ("run", 13, 0x9A), ("eob",)]), p16, compression=2)
cases["rle4-odd-absolute.bmp"] = bmp(W, H, 4, rle(
    [op for y in range(H) for op in (("abs", [1, 2, 3, 4, 5], True), ("abs", [6, 7, 8], True), ("run", 5, 0xAB),
                                     ("eol",))]), p16, compression=2)
# RLE that ends before the image is full (end of bitmap early, or the file ends): Pillow refuses both.
cases["rle8-early-eob.bmp"] = bmp(W, H, 8, rle([("run", 13, 1), ("eol",), ("run", 5, 2), ("eob",)]), p256,
                                  compression=1)
cases["rle8-truncated.bmp"] = cases["rle8.bmp"][:-20]
cases["rle8-delta-at-end.bmp"] = bmp(W, H, 8, rle([("run", 13, 1), ("raw", (0, 2, 1))]), p256, compression=1)
# Pillow's greyscale shortcut reads the raster with the grey mode's own depth: 1 bit for a black-and-white palette,
# 8 bits for an identity grey palette, whatever the file's depth.
cases["pal8-blackwhite.bmp"] = bmp(W, H, 8, raster(indices(2), 8), [(0, 0, 0), (255, 255, 255)])
cases["pal4-grey-identity.bmp"] = bmp(W, H, 4, raster(indices(16), 4), grey[:16])
cases["pal4-grey-identity-narrow.bmp"] = bmp(3, H, 4, raster(indices(16, 3), 4), grey[:16])
cases["rle8-blackwhite.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(2), False)), [(0, 0, 0), (255, 255, 255)],
                                   compression=1)
cases["rle8-24bit.bmp"] = bmp(W, H, 24, rle(rle_rows(runny(256), False)), compression=1)
cases["rle4-bits8.bmp"] = bmp(W, H, 8, rle(rle_rows(runny(16), True)), p16, compression=2)
# Refused: truncated raster, unknown compression, 2-bit, bad header size.
cases["pal8-truncated.bmp"] = cases["pal8.bmp"][:-9]
cases["jpeg-compression.bmp"] = bmp(W, H, 24, raster(rgb_rows, 24), compression=4)
bad_header = bytearray(cases["rgb24.bmp"])
bad_header[14] = 52
cases["header-52.bmp"] = bytes(bad_header)

# ---------------------------------------------------------------------------------------------------------------- GIF


def lzw(pixels, min_size, clear_first=True, end=True, reset_when_full=True, end_after=None):
    """GIF LZW codes for `pixels` (variable-width, LSB first). With reset_when_full=False the table stays full
    (no clear at 4096), as some encoders write; end_after=n puts an end code after the code that covers pixel n."""
    clear, eoi = 1 << min_size, (1 << min_size) + 1
    codes = []
    size = min_size + 1
    table = {bytes([i]): i for i in range(clear)}
    nxt = eoi + 1
    out_bits = []

    def emit(code):
        out_bits.append((code, size))

    if clear_first:
        emit(clear)
    w = b""
    covered = 0
    for p in pixels:
        wc = w + bytes([p])
        if wc in table:
            w = wc
            continue
        emit(table[w])
        covered += len(w)
        if end_after is not None and covered >= end_after:
            emit(eoi)
            end_after = None
        if nxt >= 1 << size and size < 12:  # the decoder widens its codes one code after the encoder adds the entry
            size += 1
        if nxt < 4096:
            table[wc] = nxt
            nxt += 1
        elif reset_when_full:
            emit(clear)
            table = {bytes([i]): i for i in range(clear)}
            nxt = eoi + 1
            size = min_size + 1
        w = bytes([p])
    if w:
        emit(table[w])
    if end:
        emit(eoi)
    acc = nbits = 0
    data = bytearray()
    for code, s in out_bits:
        acc |= code << nbits
        nbits += s
        while nbits >= 8:
            data.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        data.append(acc & 255)
    return bytes(data)


def sub_blocks(data, size=255):
    return b"".join(bytes([len(data[i:i + size])]) + data[i:i + size] for i in range(0, len(data), size)) + b"\0"


def pal_bytes(pal, bits):
    flat = b"".join(bytes(c) for c in pal)
    return flat + b"\0" * (3 * (1 << bits) - len(flat))


def gif(sw, sh, frames, gpal=None, gbits=None, version=b"GIF89a", background=0, trailer=b";", before=b""):
    """frames: dicts with x, y, w, h, pixels (flat), optional lpal/lbits, transparency, disposal, interlace, min_size,
    data (raw LZW bytes instead of encoding pixels), between (bytes before the frame)."""
    flags = 0
    if gpal is not None:
        gbits = gbits or max(1, (len(gpal) - 1).bit_length())
        flags = 0x80 | (gbits - 1) | ((gbits - 1) << 4)
    b = version + struct.pack("<HHBBB", sw, sh, flags, background, 0)
    if gpal is not None:
        b += pal_bytes(gpal, gbits)
    b += before
    for f in frames:
        b += f.get("between", b"")
        if "transparency" in f or "disposal" in f:
            t = f.get("transparency")
            b += b"\x21\xF9\x04" + bytes([(f.get("disposal", 0) << 2) | (t is not None)]) + b"\x05\x00" + \
                 bytes([t or 0]) + b"\0"
        lflags = 0x40 if f.get("interlace") else 0
        lpal = f.get("lpal")
        if lpal is not None:
            lbits = f.get("lbits") or max(1, (len(lpal) - 1).bit_length())
            lflags |= 0x80 | (lbits - 1)
        b += b"\x2C" + struct.pack("<HHHHB", f["x"], f["y"], f["w"], f["h"], lflags)
        if lpal is not None:
            b += pal_bytes(lpal, lbits)
        min_size = f.get("min_size", 8)
        pixels = f["pixels"]
        if f.get("interlace"):
            rows = [pixels[i * f["w"]:(i + 1) * f["w"]] for i in range(f["h"])]
            order = list(range(0, f["h"], 8)) + list(range(4, f["h"], 8)) + list(range(2, f["h"], 4)) + \
                list(range(1, f["h"], 2))
            pixels = [p for y in order for p in rows[y]]
        data = f.get("data") or lzw(pixels, min_size, **f.get("lzw", {}))
        b += bytes([min_size]) + sub_blocks(data)
    return b + trailer


def flat(n, w=W, h=H):
    return [rng.randrange(n) for _ in range(w * h)]


g256 = palette(256)
frame = {"x": 0, "y": 0, "w": W, "h": H, "pixels": flat(256)}
cases["plain.gif"] = gif(W, H, [frame], g256)
cases["gif87a.gif"] = gif(W, H, [frame], g256, version=b"GIF87a")
cases["interlaced.gif"] = gif(W, 11, [{**frame, "h": 11, "pixels": flat(256, W, 11), "interlace": True}], g256)
cases["small-palette.gif"] = gif(W, H, [{**frame, "pixels": flat(4), "min_size": 2}], palette(4))
cases["index-past-palette.gif"] = gif(W, H, [{**frame, "pixels": flat(16), "min_size": 4}], palette(4))
cases["grey-palette.gif"] = gif(W, H, [frame], grey)
# Transparency: the canvas outside the first frame is the transparent index; transparent pixels keep their colour.
sub = {"x": 3, "y": 2, "w": 6, "h": 4, "pixels": flat(256, 6, 4)}
cases["transparent.gif"] = gif(W, H, [{**frame, "transparency": frame["pixels"][5]}], g256)
cases["transparent-subframe.gif"] = gif(W, H, [{**sub, "transparency": 77}], g256)
cases["subframe.gif"] = gif(W, H, [sub], g256, background=9)
cases["dispose-background.gif"] = gif(W, H, [{**sub, "transparency": 12, "disposal": 2}, frame], g256)
cases["dispose-previous.gif"] = gif(W, H, [{**sub, "disposal": 3}, frame], g256)
# Palettes: local only, local over global, none at all (grey indices), local palette on a transparent subframe.
cases["local-palette-only.gif"] = gif(W, H, [{**frame, "lpal": palette(256)}])
cases["local-over-global.gif"] = gif(W, H, [{**frame, "lpal": palette(256)}], g256)
cases["no-palette.gif"] = gif(W, H, [frame])
cases["no-palette-transparent-subframe.gif"] = gif(W, H, [{**sub, "transparency": 200}])
# Frame larger than the screen, or outside it: the image grows to hold the frame.
cases["frame-larger-than-screen.gif"] = gif(6, 4, [{**frame, "transparency": 3}], g256)
cases["frame-outside-screen.gif"] = gif(W, H, [{**sub, "x": 10, "y": 5}], g256)
# LZW corners: no clear code first, a full table kept without a clear (4096 entries), extra data after the last
# pixel, extensions and stray bytes before the frame.
big = [rng.randrange(256) for _ in range(64 * 64)]
cases["lzw-no-clear.gif"] = gif(W, H, [{**frame, "lzw": {"clear_first": False}}], g256)
cases["lzw-full-table.gif"] = gif(64, 64, [{"x": 0, "y": 0, "w": 64, "h": 64, "pixels": big,
                                           "lzw": {"reset_when_full": False}}], g256)
cases["lzw-resets.gif"] = gif(64, 64, [{"x": 0, "y": 0, "w": 64, "h": 64, "pixels": big}], g256)
cases["lzw-extra-pixels.gif"] = gif(W, H, [{**frame, "data": lzw(frame["pixels"] * 2, 8)}], g256)
cases["lzw-no-end-code.gif"] = gif(W, H, [{**frame, "lzw": {"end": False}}], g256)
cases["extensions-first.gif"] = gif(W, H, [{**frame, "between": b"\x21\xFE\x05hello\x00\x21\xFF\x0bNETSCAPE2.0"
                                                                 b"\x03\x01\x00\x00\x00"}], g256)
cases["stray-bytes.gif"] = gif(W, H, [{**frame, "between": b"\x00\x07\x99"}], g256)
cases["min-code-size-2-with-256-colors.gif"] = gif(W, H, [{**frame, "pixels": flat(4), "min_size": 2}], g256)
# Refused: data ends early (end code before the last pixel), bad codes, LZW size > 12, truncated, empty frame.
cases["lzw-early-end.gif"] = gif(W, H, [{**frame, "data": lzw(frame["pixels"][:40], 8)}], g256)
# An end code inside the frame: Pillow says "truncated" when it has read the whole file by then, but when more than
# its 64 KiB read size follows the frame it reads past the end code. BmpGifTests builds that bigger file from this one
# (a 70,000-byte comment before the trailer); here Pillow confirms it then reads plain.gif's pixels.
cases["lzw-end-code-inside.gif"] = gif(W, H, [{**frame, "lzw": {"end_after": 40}}], g256)
long_comment = b"\x21\xFE" + (b"\xFF" + bytes(255)) * 275 + b"\0"
with open(os.path.join(out, "plain.gif.tmp"), "wb") as f:
    f.write(cases["plain.gif"])
with open(os.path.join(out, "end-code.gif.tmp"), "wb") as f:
    f.write(cases["lzw-end-code-inside.gif"][:-1] + long_comment + b";")
assert Image.open(os.path.join(out, "end-code.gif.tmp")).convert("RGB").tobytes() == \
    Image.open(os.path.join(out, "plain.gif.tmp")).convert("RGB").tobytes()
os.remove(os.path.join(out, "plain.gif.tmp"))
os.remove(os.path.join(out, "end-code.gif.tmp"))
cases["lzw-bad-code.gif"] = gif(W, H, [{**frame, "data": lzw(frame["pixels"][:40], 8, end=False)
                                                           + b"\xff\xff\xff\xff"}], g256)
cases["lzw-min-size-13.gif"] = gif(W, H, [{**frame, "min_size": 13, "data": b"\0\0\0"}], g256)
cases["truncated.gif"] = cases["plain.gif"][:-30]
cases["empty-frame.gif"] = gif(W, H, [{**sub, "w": 0, "pixels": []}], g256)
cases["no-frame.gif"] = gif(W, H, [], g256)

# ---------------------------------------------------------------------------------------------------------------- write
for old in os.listdir(out):
    if old.endswith((".bmp", ".gif", ".rgb")):
        os.remove(os.path.join(out, old))
lines = []
for name, data in cases.items():
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(data)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
    except Exception as e:  # noqa: BLE001 - any refusal is what we record
        msg = f"{type(e).__name__}: {e}".replace("\t", " ").replace("\n", " ")
        lines.append(f"{name}\trefused\t{msg}")
        print(f"{name}: refused ({msg})")
        continue
    with open(path + ".rgb", "wb") as f:
        f.write(im.tobytes())
    lines.append(f"{name}\t{im.size[0]}\t{im.size[1]}")
    print(name, im.size)
with open(os.path.join(out, "cases.tsv"), "w") as f:
    f.write("\n".join(lines) + "\n")
