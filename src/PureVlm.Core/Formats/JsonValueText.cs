using System.Text.Encodings.Web;
using System.Text.Json;

namespace PureVlm.Formats;

/// <summary>A JSON value as error messages quote it: compact, on one line, and cut short.</summary>
static class JsonValueText
{
    static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// <paramref name="value"/> re-serialized without indentation (a raw object or array spans lines as written, and a
    /// message must stay one line), at most <paramref name="max"/> characters.
    /// </summary>
    public static string Show(JsonElement value, int max = 60)
    {
        string s = JsonSerializer.Serialize(value, Compact);
        return s.Length <= max ? s : s[..max] + "…";
    }
}
