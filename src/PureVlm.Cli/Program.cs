namespace PureVlm.Cli;

static class Program
{
    static int Main(string[] args)
    {
        Console.Error.WriteLine("purevlm: not implemented yet");
        return 1;
    }
}
