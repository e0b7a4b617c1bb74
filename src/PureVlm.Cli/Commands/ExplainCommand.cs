namespace PureVlm.Cli.Commands;

static class ExplainCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("purevlm explain: not implemented yet");
        return 1;
    }
}
