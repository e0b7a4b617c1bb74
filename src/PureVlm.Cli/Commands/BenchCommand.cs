namespace PureVlm.Cli.Commands;

static class BenchCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm bench: not implemented yet");
        return 1;
    }
}
