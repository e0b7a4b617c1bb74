namespace PureVlm;

/// <summary>
/// Base of every error the library raises about its inputs (model files, configs, tokenizers, images, prompts):
/// catch this one type to handle them all. The message is one line naming the file or value, what was found and
/// what was expected. Programming errors (a null argument, a disposed model) keep the framework's own types, and
/// cancellation stays <see cref="OperationCanceledException"/>.
/// </summary>
public abstract class PureVlmException(string message, Exception? inner = null) : Exception(OneLine(message), inner)
{
    /// <summary>
    /// Messages quote what they found, and a found value can hold line breaks (a JSON string with "\n", a file name):
    /// they are written as the two characters \n (\r as \r) so that the message stays one line.
    /// </summary>
    static string OneLine(string message) =>
        message.AsSpan().IndexOfAny('\n', '\r') < 0 ? message : message.Replace("\r", "\\r").Replace("\n", "\\n");
}
