namespace PureVlm.Tokenization;

/// <summary>Raised for a tokenizer file that cannot be used; the message names the file and the problem.</summary>
public sealed class InvalidTokenizerException(string message, Exception? inner = null) : PureVlmException(message, inner);
