using PureVlm.Formats;
using System.Text.Json;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>Raised for a chat that a family's template cannot render or a messages file that is not HF's format; the message says where and what.</summary>
public sealed class ChatFormatException(string message) : Exception(message);

/// <summary>One part of a message's content: text, or an image (the request's images fill the image parts in order).</summary>
/// <param name="Text">The text, or null for an image.</param>
public sealed record ChatPart(string? Text)
{
    /// <summary>An image part (HF's <c>{"type": "image"}</c>).</summary>
    public static ChatPart Image { get; } = new((string?)null);
    /// <summary>True for an image part.</summary>
    public bool IsImage => Text is null;
}

/// <summary>
/// One chat message as HF's chat templates take it: <c>{"role": "system" | "user" | "assistant", "content": [{"type": "text",
/// "text": …}, {"type": "image"}, …]}</c>.
/// </summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">Its parts, in order.</param>
public sealed record ChatMessage(string Role, IReadOnlyList<ChatPart> Content)
{
    /// <summary>The roles HF's message format has.</summary>
    public static readonly IReadOnlyList<string> Roles = ["system", "user", "assistant"];

    /// <summary>A message of one text part.</summary>
    public static ChatMessage FromText(string role, string text) => new(role, [new ChatPart(text)]);

    /// <summary>Image parts of every message.</summary>
    public static int CountImages(IReadOnlyList<ChatMessage> messages) => messages.Sum(m => m.Content.Count(p => p.IsImage));

    /// <summary>
    /// The chat of the <c>--prompt</c> / <c>--system</c> shorthand: an optional system message, then one user message whose
    /// text is cut at each <paramref name="imageMarker"/> (one marker per image, in order) or, without markers, follows
    /// the images.
    /// </summary>
    public static IReadOnlyList<ChatMessage> FromPrompt(string prompt, string? system, int images, string imageMarker = "<image>")
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        var pieces = prompt.Split(imageMarker);
        int markers = pieces.Length - 1;
        var parts = new List<ChatPart>();
        if (markers == 0) parts.AddRange(Enumerable.Repeat(ChatPart.Image, images));
        else if (markers != images)
            throw new ArgumentException($"the prompt has {markers} {imageMarker} markers for {images} images; give one per image, or none to put the images first", nameof(prompt));
        for (int i = 0; i < pieces.Length; i++)
        {
            if (i > 0) parts.Add(ChatPart.Image);
            if (pieces[i].Length > 0) parts.Add(new ChatPart(pieces[i]));
        }
        var user = new ChatMessage("user", parts);
        return system is null ? [user] : [FromText("system", system), user];
    }

    /// <summary>Reads a JSON file of messages in HF's format (see <see cref="Parse"/>).</summary>
    public static IReadOnlyList<ChatMessage> Load(string path)
    {
        string json;
        try { json = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ChatFormatException($"{path}: cannot read messages ({e.Message})"); }
        return Parse(json, path);
    }

    /// <summary>
    /// Parses HF's message list: each message a <c>role</c> and a <c>content</c> that is a string (one text part) or a list
    /// of <c>{"type": "text", "text": …}</c> and <c>{"type": "image"}</c> parts. An image part's other keys (<c>url</c>,
    /// <c>path</c>, …) are ignored: the images come from the request, in order. <paramref name="source"/> names it in errors.
    /// </summary>
    public static IReadOnlyList<ChatMessage> Parse(string json, string source = "messages")
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new ChatFormatException($"{source}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0)
                throw new ChatFormatException($"{source}: expected a non-empty JSON list of messages, found {Show(root)}");
            var messages = new List<ChatMessage>();
            int index = 0;
            foreach (var m in root.EnumerateArray())
            {
                string at = $"{source}: message {index++}";
                if (m.ValueKind != JsonValueKind.Object) throw new ChatFormatException($"{at} is {Show(m)}, expected an object with role and content");
                string role = m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
                    : throw new ChatFormatException($"{at}: role is {(m.TryGetProperty("role", out var bad) ? Show(bad) : "missing")}, expected \"system\", \"user\" or \"assistant\"");
                if (!Roles.Contains(role)) throw new ChatFormatException($"{at}: role is \"{role}\", expected \"system\", \"user\" or \"assistant\"");
                if (!m.TryGetProperty("content", out var content)) throw new ChatFormatException($"{at}: content is missing, expected a string or a list of parts");
                messages.Add(new ChatMessage(role, content.ValueKind switch
                {
                    JsonValueKind.String => [new ChatPart(content.GetString()!)],
                    JsonValueKind.Array => content.EnumerateArray().Select((p, i) => Part(p, $"{at}, part {i}")).ToList(),
                    _ => throw new ChatFormatException($"{at}: content is {Show(content)}, expected a string or a list of parts"),
                }));
            }
            return messages;
        }
    }

    static ChatPart Part(JsonElement p, string at)
    {
        string? type = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return type switch
        {
            "image" => ChatPart.Image,
            "text" when p.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String => new ChatPart(text.GetString()!),
            "text" => throw new ChatFormatException($"{at}: a text part needs a string \"text\""),
            _ => throw new ChatFormatException($"{at} is {Show(p)}, expected {{\"type\": \"text\", \"text\": …}} or {{\"type\": \"image\"}}"),
        };
    }

    static string Show(JsonElement v) => JsonValueText.Show(v, 40);
}

/// <summary>
/// A prompt format with a chat template: it renders HF message lists as the checkpoint's <c>chat_template</c> does
/// (with <c>add_generation_prompt</c>) and lays out the result as the family's processor does.
/// </summary>
public interface IChatPromptFormat : IPromptFormat
{
    /// <summary>The text the chat template gives for <paramref name="messages"/>, image parts as the template's image placeholder.</summary>
    string Render(IReadOnlyList<ChatMessage> messages);

    /// <summary>The ids of <paramref name="messages"/>: rendered, image placeholders expanded by the processor, tokenized, bos included.</summary>
    int[] BuildChat(SentencePieceTokenizer tokenizer, IReadOnlyList<ChatMessage> messages);
}
