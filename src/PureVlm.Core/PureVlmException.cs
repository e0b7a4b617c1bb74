namespace PureVlm;

/// <summary>
/// Base of every error the library raises about its inputs (model files, configs, tokenizers, images, prompts):
/// catch this one type to handle them all. The message is one line naming the file or value, what was found and
/// what was expected. Programming errors (a null argument, a disposed model) keep the framework's own types, and
/// cancellation stays <see cref="OperationCanceledException"/>.
/// </summary>
public abstract class PureVlmException(string message, Exception? inner = null) : Exception(message, inner);
