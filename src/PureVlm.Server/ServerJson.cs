using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PureVlm.Server;

/// <summary>How the server writes JSON and reads the fields of a request body, with 400s that name the field.</summary>
static class ServerJson
{
    /// <summary>Characters as they are (<c>&lt;loc0512&gt;</c>), not as <c>\u003C</c> escapes; nulls written (OpenAI's shapes have them).</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The body as a JSON object, or a 400.</summary>
    public static JsonObject ParseObject(byte[] body)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(body); }
        catch (JsonException e) { throw ApiException.BadRequest($"the body is not valid JSON: {e.Message.ReplaceLineEndings(" ")}", code: "invalid_json"); }
        return node as JsonObject ?? throw ApiException.BadRequest("the body must be a JSON object", code: "invalid_json");
    }

    public static string? String(JsonObject o, string name, string? path = null) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw ApiException.BadRequest($"'{path ?? name}' must be a string", path ?? name),
    };

    public static bool? Bool(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out bool b) => b,
        _ => throw ApiException.BadRequest($"'{name}' must be true or false", name),
    };

    public static double? Number(JsonObject o, string name, double min, double max)
    {
        if (o[name] is null) return null;
        if (o[name] is not JsonValue v || !v.TryGetValue(out double d) || !double.IsFinite(d) || d < min || d > max)
            throw ApiException.BadRequest($"'{name}' must be a number in [{min}, {max}]", name);
        return d;
    }

    public static int? Int(JsonObject o, string name, int min, int max)
    {
        var d = Number(o, name, min, max);
        if (d is double x && x != Math.Floor(x)) throw ApiException.BadRequest($"'{name}' must be an integer", name);
        return (int?)d;
    }
}
