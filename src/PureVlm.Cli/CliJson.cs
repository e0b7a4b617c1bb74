using System.Text.Encodings.Web;
using System.Text.Json;

namespace PureVlm.Cli;

/// <summary>How the CLI writes JSON: characters as they are (<c>&lt;loc0512&gt;</c>, <c>▁red</c>), not as <c>\u003C</c> escapes.</summary>
static class CliJson
{
    /// <summary>Relaxed escaping: only what JSON itself requires (quotes, backslashes, control characters).</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
