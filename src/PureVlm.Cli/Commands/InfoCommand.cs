namespace PureVlm.Cli.Commands;

static class InfoCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm info: not implemented yet");
        return 1;
    }
}
