namespace PureVlm.WeightsTools;

static class Program
{
    static int Main(string[] args)
    {
        Console.Error.WriteLine("weights-tools: not implemented yet");
        return 1;
    }
}
