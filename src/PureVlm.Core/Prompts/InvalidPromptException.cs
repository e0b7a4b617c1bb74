namespace PureVlm.Prompts;

/// <summary>Raised for a prompt the model cannot take as given (e.g. image markers that do not match the images); the message says what to change.</summary>
public sealed class InvalidPromptException(string message) : PureVlmException(message);
