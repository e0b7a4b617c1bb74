using PureVlm.Prompts;

namespace PureVlm.Cli;

/// <summary>
/// The chat options that run, trace and explain share: <c>--messages FILE.json</c> (HF's message list) or the shorthand
/// <c>--system TEXT</c> with <c>--prompt TEXT</c> (<c>&lt;image&gt;</c> markers place the images, else they go first).
/// </summary>
static class ChatInput
{
    /// <summary>The value options to declare for them.</summary>
    public static readonly string[] Options = ["--messages", "--system"];

    /// <summary>
    /// The chat the options give for <paramref name="images"/> images, or null when there is only a plain <c>--prompt</c>
    /// (each family lays that out itself). <paramref name="prompt"/> is the <c>--prompt</c> value, if any.
    /// </summary>
    public static IReadOnlyList<ChatMessage>? Messages(CommandLine cl, string? prompt, int images)
    {
        string? file = cl.Get("--messages"), system = cl.Get("--system");
        if (file != null)
        {
            if (prompt != null) throw new UsageException("give either --messages FILE or --prompt TEXT, not both");
            if (system != null) throw new UsageException("--system goes with --prompt; with --messages, put the system message in the file");
            var messages = ChatMessage.Load(file);
            int parts = ChatMessage.CountImages(messages);
            if (parts != images)
                throw new UsageException($"--messages {file} has {parts} image parts for {images} --image option(s); give one image per {{\"type\": \"image\"}} part, in order");
            return messages;
        }
        if (system == null) return null;
        if (prompt == null) throw new UsageException("--system needs --prompt TEXT");
        try { return ChatMessage.FromPrompt(prompt, system, images); }
        catch (ArgumentException e) { throw new UsageException($"--prompt: {e.Message.Split(" (Parameter")[0]}"); }
    }
}
