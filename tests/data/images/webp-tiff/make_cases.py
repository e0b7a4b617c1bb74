# Makes WebP and TIFF test images and what Pillow reads from them (load_image's path: open, exif_transpose, convert("RGB")),
# as raw RGB bytes beside each file. Run from the repository root with Debian 12's python3-pil (Pillow 9.4.0):
#   /usr/bin/python3 tests/data/images/webp-tiff/make_cases.py
import os
from PIL import Image, ImageOps

out = os.path.dirname(os.path.abspath(__file__))
base = Image.open(os.path.join(out, "..", "samples-v1", "03-red-circle.png")).convert("RGB").resize((61, 47))
rgba = base.convert("RGBA")
rgba.putalpha(Image.linear_gradient("L").resize((61, 47)))

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
}
for name, save in cases.items():
    path = os.path.join(out, name)
    save(path)
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    with open(path + ".rgb", "wb") as f:
        f.write(im.tobytes())
    print(name, im.size)
