namespace PureVlm.Cli.Commands;

static class RunCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm run: not implemented yet");
        return 1;
    }
}
