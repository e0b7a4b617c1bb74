"""Expected ids of molmo-tiny's tokenizer.json on hand-picked texts, from a plain restatement of Hugging Face's
byte-level BPE pipeline (added tokens cut out, NFC, Qwen2's split regex, bytes_to_unicode, lowest-rank merges).
Needs the `regex` module (for \\p{L}). Usage: python3 make_molmo_bpe_cases.py > molmo-tiny-bpe.json"""
import json, sys, unicodedata
import regex

tok = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "../fixtures/molmo-tiny/tokenizer.json", encoding="utf-8"))
vocab = tok["model"]["vocab"]
ranks = {tuple(m.split(" ")): i for i, m in enumerate(tok["model"]["merges"])}
added = sorted(tok["added_tokens"], key=lambda t: -len(t["content"]))
pattern = regex.compile(tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

byte_char = bytes_to_unicode()

def bpe(word):
    symbols = [byte_char[b] for b in word.encode("utf-8")]
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30: break
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    return [vocab[s] for s in symbols]

def encode(text):
    ids, i, start = [], 0, 0
    def flush(chunk):
        for piece in pattern.findall(unicodedata.normalize("NFC", chunk)):
            ids.extend(bpe(piece))
    while i < len(text):
        hit = next((t for t in added if text.startswith(t["content"], i)), None)
        if hit:
            flush(text[start:i]); ids.append(hit["id"]); i += len(hit["content"]); start = i
        else:
            i += 1
    flush(text[start:])
    return ids

texts = [
    " User: Point to the red disc. Assistant:",
    "Hello world",
    "  two  spaces   and trailing   ",
    "line one\nline two\r\n\nthree\n",
    "tabs\tand\t\tmore",
    "digits 12345 and 3.14159",
    "He's, they'LL, we'VE, I'm, it'd, you're",
    "punctuation!!! ... ??? (parens) [brackets] {braces}",
    "café naïve résumé",
    "cafe\u0301 (combining accent, NFC)",
    "日本語のテキスト",
    "emoji 😀👍🏽 and ✓",
    "<|endoftext|>after the end",
    "points <im_start><im_patch><im_col><im_end> tokens",
    "|<EXTRA_TOKENS_3>| extra",
    "<point x=\"61.5\" y=\"40.2\" alt=\"red disc\">red disc</point>",
    "Counting the <points x1=\"20.1\" y1=\"30.2\">squares</points> shows a total of 2.",
    "",
    " ",
    "\n\n",
]
# "nfc": whether NFC changes the text (an engine without Unicode normalization tables can only get the others right).
json.dump([{"text": t, "nfc": unicodedata.normalize("NFC", t) != t, "ids": encode(t)} for t in texts], sys.stdout, ensure_ascii=False, indent=1)
print()
