"""Makes the fuzz harness's generated seeds (benchmarks/Fuzz.cs): small images in every format ImageLoader reads,
and a small tokenizer.json cut from the Gemma one. Run from the repository root:

    /usr/bin/python3 tests/data/fuzz/make_seeds.py      # Debian python3-pil, Pillow 9.4.0, made the committed files

Other seeds are the repository's own files, named in Fuzz.cs."""
import gzip, io, json, os, shutil
from PIL import Image

out = "tests/data/fuzz/seeds"
os.makedirs(out, exist_ok=True)
src = Image.open("models/paligemma-shapes/samples/04-red-circle.png").convert("RGB").resize((24, 16), Image.BICUBIC)

def exif(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()

src.save(f"{out}/rgb.png")
src.convert("P", palette=Image.ADAPTIVE, colors=16).save(f"{out}/palette.png", transparency=3)
src.convert("L").save(f"{out}/gray.png")
src.convert("RGBA").save(f"{out}/interlaced-rgba.png", interlace=1)
src.save(f"{out}/baseline.jpg", quality=80)
src.save(f"{out}/progressive-exif6.jpg", quality=80, progressive=True, exif=exif(6))
src.convert("L").save(f"{out}/gray.jpg", quality=90)
src.save(f"{out}/rgb24.bmp")
src.convert("P", palette=Image.ADAPTIVE, colors=16).save(f"{out}/palette8.bmp")
src.convert("P", palette=Image.ADAPTIVE, colors=16).save(f"{out}/palette.gif", transparency=2)
# BMP and GIF layouts with code paths of their own (RLE with deltas, OS/2 1.x, bitfields; interlaced, transparent
# subframe), copied from tests/data/images/bmp-gif (made by its make_cases.py).
for name in ["rle8-delta.bmp", "rle4.bmp", "os2v1-pal4.bmp", "rgb565-v4.bmp", "interlaced.gif", "transparent-subframe.gif"]:
    shutil.copy(f"tests/data/images/bmp-gif/{name}", f"{out}/{name}")
src.save(f"{out}/lossy-exif3.webp", quality=70, exif=exif(3))
src.convert("RGBA").save(f"{out}/alpha-lossless.webp", lossless=True)
src.save(f"{out}/lzw-exif8.tiff", compression="tiff_lzw", exif=exif(8))
src.save(f"{out}/packbits.tiff", compression="packbits")
src.convert("P", palette=Image.ADAPTIVE, colors=16).save(f"{out}/palette.tiff")
src.convert("L").save(f"{out}/gray-deflate.tiff", compression="tiff_adobe_deflate")

# tokenizer.json: Gemma's pipeline with the first 600 ids (specials, byte fallback <0x00>..<0xFF>, a few pieces) and
# the merges among them, so that each parse takes milliseconds instead of the full 256k vocabulary's second.
with gzip.open("tests/data/tokenizer-fixtures/gemma/tokenizer.json.gz", "rt", encoding="utf-8") as f:
    t = json.load(f)
keep = 600
vocab = {k: v for k, v in t["model"]["vocab"].items() if v < keep}
t["model"]["vocab"] = vocab
t["model"]["merges"] = [m for m in t["model"]["merges"]
                        if (m if isinstance(m, list) else m.split(" ", 1))[0] in vocab
                        and (m if isinstance(m, list) else m.split(" ", 1))[1] in vocab
                        and "".join(m if isinstance(m, list) else m.split(" ", 1)) in vocab]
t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < keep]
with open(f"{out}/tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(t, f, ensure_ascii=False)
