# Makes WebP and TIFF test images and what Pillow reads from them (load_image's path: open, exif_transpose, convert("RGB")),
# as raw RGB bytes beside each file. Run from the repository root with Debian 12's python3-pil (Pillow 9.4.0):
#   /usr/bin/python3 tests/data/images/webp-tiff/make_cases.py
import os
import random
import struct
from PIL import Image, ImageOps

out = os.path.dirname(os.path.abspath(__file__))
base = Image.open(os.path.join(out, "..", "samples-v1", "03-red-circle.png")).convert("RGB").resize((61, 47))
rgba = base.convert("RGBA")
rgba.putalpha(Image.linear_gradient("L").resize((61, 47)))



def palette_tiff(path, bits, big_endian=False, tile=None):
    """A palette TIFF written by hand (Pillow writes only 8-bit ones, untiled): uncompressed, one strip or square tiles."""
    rng = random.Random(bits * 2 + big_endian)
    e = ">" if big_endian else "<"
    w, h = base.size
    n = 1 << bits
    index = [[(x * 5 + y * 3 + x * y) % n for x in range(w)] for y in range(h)]
    tw, th = (tile, tile) if tile else (w, h)
    blocks = []
    for ty in range(0, h, th):
        for tx in range(0, w, tw):
            data = b""
            for y in range(ty, ty + th):
                row = [index[y][x] if y < h and x < w else 0 for x in range(tx, tx + tw)]
                packed = 0
                for v in row:
                    packed = packed << bits | v
                pad = (-len(row) * bits) % 8
                data += (packed << pad).to_bytes((len(row) * bits + pad) // 8, "big")
            blocks.append(data)
    colormap = [rng.randrange(65536) for _ in range(3 * n)]
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits]), (259, 3, [1]), (262, 3, [3])]
    entries += [(322, 3, [tw]), (323, 3, [th])] if tile else [(278, 4, [h])]
    entries += [(277, 3, [1]), (320, 3, colormap)]
    offsets_tag, counts_tag = (324, 325) if tile else (273, 279)
    entries += [(offsets_tag, 4, [0] * len(blocks)), (counts_tag, 4, [len(b) for b in blocks])]
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extra = b""
    layout = []
    for tag, typ, values in entries:
        size = 2 if typ == 3 else 4
        if len(values) * size > 4:
            layout.append((tag, typ, values, extra_at + len(extra)))
            extra += b"\0" * (len(values) * size)
        else:
            layout.append((tag, typ, values, None))
    data_at = extra_at + len(extra)
    offsets, at = [], data_at
    for b in blocks:
        offsets.append(at)
        at += len(b)
    out_bytes = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", len(entries))
    extra = b""
    for tag, typ, values, where in layout:
        if tag == offsets_tag:
            values = offsets
        fmt = e + ("H" if typ == 3 else "I") * len(values)
        packed = struct.pack(fmt, *values)
        if where is None:
            out_bytes += struct.pack(e + "HHI", tag, typ, len(values)) + packed.ljust(4, b"\0")
        else:
            out_bytes += struct.pack(e + "HHII", tag, typ, len(values), where)
            extra += packed
    out_bytes += struct.pack(e + "I", 0) + extra + b"".join(blocks)
    with open(path, "wb") as f:
        f.write(out_bytes)


def exif(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e


XMP6 = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
paletted = base.convert("P", palette=Image.ADAPTIVE, colors=16)
cases = {
    "lossless.webp": lambda p: base.save(p, lossless=True),
    "lossy.webp": lambda p: base.save(p, quality=80),
    "alpha-lossless.webp": lambda p: rgba.save(p, lossless=True),
    "plain.tiff": lambda p: base.save(p, compression=None),
    "lzw.tiff": lambda p: base.save(p, compression="tiff_lzw"),
    "deflate.tiff": lambda p: base.save(p, compression="tiff_adobe_deflate"),
    "packbits.tiff": lambda p: base.save(p, compression="packbits"),
    "gray.tiff": lambda p: base.convert("L").save(p, compression="tiff_lzw"),
    "palette.tiff": lambda p: base.convert("P", palette=Image.ADAPTIVE, colors=16).save(p),
    "rgba.tiff": lambda p: rgba.save(p, compression="tiff_lzw"),
    "palette-lzw.tiff": lambda p: base.convert("P", palette=Image.ADAPTIVE, colors=200).save(p, compression="tiff_lzw"),
    "palette-multipage.tiff": lambda p: paletted.save(p, save_all=True, append_images=[paletted.rotate(90), base]),
    "palette1.tiff": lambda p: palette_tiff(p, 1),
    "palette2.tiff": lambda p: palette_tiff(p, 2, big_endian=True),
    "palette4.tiff": lambda p: palette_tiff(p, 4),
    "palette4-tiled.tiff": lambda p: palette_tiff(p, 4, tile=16),
    "palette8-tiled-be.tiff": lambda p: palette_tiff(p, 8, big_endian=True, tile=16),
    "exif3.tiff": lambda p: base.save(p, exif=exif(3)),
    "exif6.tiff": lambda p: base.save(p, exif=exif(6), compression="tiff_lzw"),
    "exif8-palette.tiff": lambda p: paletted.save(p, exif=exif(8)),
    "exif5.tiff": lambda p: base.save(p, exif=exif(5)),
    "exif6.webp": lambda p: base.save(p, lossless=True, exif=exif(6)),
    # XMP orientation: Pillow 9.4 reads it only from a PNG's "XML:com.adobe.xmp" text, so these stay as stored.
    "xmp6.webp": lambda p: base.save(p, lossless=True, xmp=XMP6),
    "xmp6.tiff": lambda p: base.save(p, tiffinfo={700: XMP6}),
}
for name, save in cases.items():
    path = os.path.join(out, name)
    save(path)
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    with open(path + ".rgb", "wb") as f:
        f.write(im.tobytes())
    print(name, Image.open(path).mode, im.size)
