namespace PureVlm.Tokenization;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c>: byte-level BPE spells each UTF-8 byte as one printable character (the printable
/// Latin-1 bytes as themselves, the other 68 as U+0100 onwards in byte order, so a space is "Ġ").
/// </summary>
static class ByteLevelAlphabet
{
    /// <summary>The character of each byte.</summary>
    public static readonly char[] ByteToChar = Build();

    static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    static char[] Build()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    /// <summary>The bytes a piece spells, or null if a character of it is not in the alphabet.</summary>
    public static byte[]? Bytes(string piece)
    {
        var bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
            if (!CharToByte.TryGetValue(piece[i], out bytes[i])) return null;
        return bytes;
    }
}
