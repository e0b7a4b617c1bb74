using System.Globalization;

namespace PureVlm.Cli;

/// <summary>A wrong command line; Program prints its message as one line and exits with code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options of one command: <c>--name value</c> pairs, repeatable ones, and bare flags, checked against what
/// the command declares so that a typo is an error that names the option instead of being ignored.
/// </summary>
public sealed class CommandLine
{
    readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    readonly string _command;
    readonly List<string> _positionals = new();

    /// <summary>Arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Positionals => _positionals;

    /// <summary>True when --help or -h was given.</summary>
    public bool HelpRequested { get; }

    /// <summary>Parses <paramref name="args"/>; <paramref name="valueOptions"/> take a value, <paramref name="flagOptions"/> don't.</summary>
    public CommandLine(string command, string[] args, string[] valueOptions, string[] flagOptions)
    {
        _command = command;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "--help" or "-h") { HelpRequested = true; continue; }
            if (flagOptions.Contains(a)) { _flags.Add(a); continue; }
            if (valueOptions.Contains(a))
            {
                if (i + 1 >= args.Length) throw new UsageException($"{a} needs a value");
                if (!_values.TryGetValue(a, out var list)) _values[a] = list = new();
                list.Add(args[++i]);
                continue;
            }
            if (a.StartsWith('-') && a.Length > 1) throw new UsageException($"unknown option '{a}' (see purevlm {command} --help)");
            _positionals.Add(a);
        }
    }

    /// <summary>Fails unless exactly <paramref name="count"/> positional arguments were given.</summary>
    public void ExpectPositionals(int count, string what)
    {
        if (_positionals.Count != count)
            throw new UsageException($"expected {what}, got {_positionals.Count} argument(s){(_positionals.Count > 0 ? ": " + string.Join(" ", _positionals) : "")} (see purevlm {_command} --help)");
    }

    /// <summary>True when the flag was given.</summary>
    public bool Flag(string name) => _flags.Contains(name);

    /// <summary>The last value of an option, or null.</summary>
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    /// <summary>Every value of a repeatable option.</summary>
    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var v) ? v : [];

    /// <summary>The value of a required option.</summary>
    public string Require(string name) => Get(name) ?? throw new UsageException($"{name} is required (see purevlm {_command} --help)");

    /// <summary>An integer option within [min, max].</summary>
    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = Get(name);
        if (s == null) return null;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new UsageException($"{name} must be an integer in [{min}, {max}], got '{s}'");
        return v;
    }

    /// <summary>A finite floating-point option within [min, max].</summary>
    public float? Float(string name, float min = float.MinValue, float max = float.MaxValue)
    {
        var s = Get(name);
        if (s == null) return null;
        if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v) || v < min || v > max)
            throw new UsageException($"{name} must be a number in [{min}, {max}], got '{s}'");
        return v;
    }
}
