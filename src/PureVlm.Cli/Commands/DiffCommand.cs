namespace PureVlm.Cli.Commands;

static class DiffCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm diff: not implemented yet");
        return 1;
    }
}
