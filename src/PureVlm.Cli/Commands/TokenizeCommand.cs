namespace PureVlm.Cli.Commands;

static class TokenizeCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm tokenize: not implemented yet");
        return 1;
    }
}
