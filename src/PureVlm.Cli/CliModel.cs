namespace PureVlm.Cli;

/// <summary>Loads the model a command names (or the embedded demo model), showing progress on stderr.</summary>
static class CliModel
{
    public static VlmModel Load(string? directory, string? segmentationDecoder = null)
    {
        bool interactive = !Console.IsErrorRedirected;
        var model = VlmModel.Load(directory, status =>
        {
            if (interactive) Console.Error.Write($"\rloading: {status}...\u001b[K");
        }, segmentationDecoder);
        if (interactive) Console.Error.Write("\r\u001b[K");
        return model;
    }
}
