namespace PureVlm.Cli.Commands;

static class TraceCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm trace: not implemented yet");
        return 1;
    }
}
