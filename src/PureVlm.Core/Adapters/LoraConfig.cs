using System.Text.Json;
using System.Text.RegularExpressions;
using PureVlm.Formats;

namespace PureVlm.Adapters;

/// <summary>
/// The parts of a PEFT <c>adapter_config.json</c> that change the maths of a LoRA adapter: <c>r</c>, <c>lora_alpha</c>,
/// <c>use_rslora</c>, <c>rank_pattern</c>, <c>alpha_pattern</c>, <c>target_modules</c>, <c>exclude_modules</c>,
/// <c>modules_to_save</c>. Unknown fields are ignored; known fields whose non-default value is not plain LoRA
/// (<c>use_dora</c>, <c>fan_in_fan_out</c>, <c>lora_bias</c>, <c>bias</c>, <c>layers_to_transform</c>, …) are refused by name.
/// Names are matched as PEFT matches them, against module names in the adapter's own key layout.
/// </summary>
public sealed class LoraConfig
{
    /// <summary>Largest adapter_config.json read (real ones are a few KB).</summary>
    public const long MaxConfigBytes = 16 << 20;

    /// <summary>PEFT's shorthand for "every Linear except the output layer".</summary>
    public const string AllLinear = "all-linear";

    /// <summary>The file this came from (for error messages).</summary>
    public string Source { get; }
    /// <summary><c>r</c>: the default rank.</summary>
    public int R { get; }
    /// <summary><c>lora_alpha</c>: the default alpha.</summary>
    public double LoraAlpha { get; }
    /// <summary><c>use_rslora</c>: scale alpha/√r instead of alpha/r.</summary>
    public bool UseRslora { get; }
    /// <summary><c>rank_pattern</c> in file order: the first key matching a module gives its rank.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> RankPattern { get; }
    /// <summary><c>alpha_pattern</c> in file order: the first key matching a module gives its alpha.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; }
    /// <summary><c>modules_to_save</c> (empty when null).</summary>
    public IReadOnlyList<string> ModulesToSave { get; }

    readonly ModuleSelector _targets;
    readonly ModuleSelector? _exclude;
    readonly Regex[] _rankRegexes, _alphaRegexes, _saveRegexes;

    LoraConfig(string source, JsonElement root)
    {
        Source = source;
        if (root.ValueKind != JsonValueKind.Object) throw Bad($"expected a JSON object, found {root.ValueKind}");
        RejectUnsupported(root);
        R = PositiveInt(root, "r");
        LoraAlpha = root.TryGetProperty("lora_alpha", out var a) && a.ValueKind != JsonValueKind.Null
            ? Number(a, "lora_alpha") : 8; // PEFT's default
        UseRslora = Bool(root, "use_rslora");
        RankPattern = Pattern(root, "rank_pattern", (e, key) => PositiveIntValue(e, $"rank_pattern['{key}']"));
        AlphaPattern = Pattern(root, "alpha_pattern", (e, key) => Number(e, $"alpha_pattern['{key}']"));
        _rankRegexes = RankPattern.Select(p => PatternKeyRegex(p.Key, "rank_pattern")).ToArray();
        _alphaRegexes = AlphaPattern.Select(p => PatternKeyRegex(p.Key, "alpha_pattern")).ToArray();
        _targets = ModuleSelector.Parse(root, "target_modules", source)
            ?? throw Bad("'target_modules' is missing or null; a saved LoRA adapter names the modules it adapts");
        _exclude = ModuleSelector.Parse(root, "exclude_modules", source);
        ModulesToSave = StringList(root, "modules_to_save");
        // PEFT never puts an adapter on a module it saves whole (or on anything inside it).
        _saveRegexes = ModulesToSave.Select(m => Compile(@"\A(?:|.*\.)(?:" + m + @")(?:\z|\..*)\z", "modules_to_save", m)).ToArray();
    }

    /// <summary>Reads and validates an adapter_config.json; errors name the file and the field.</summary>
    public static LoraConfig Load(string path)
    {
        long length = LinkedFile.Length(path) ?? throw new InvalidModelFileException($"{path}: file not found (a PEFT adapter directory holds adapter_config.json)");
        if (length > MaxConfigBytes) throw new InvalidModelFileException($"{path}: {length} bytes, more than the {MaxConfigBytes}-byte limit for an adapter config");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses adapter_config.json bytes; <paramref name="source"/> names them in errors.</summary>
    public static LoraConfig Parse(ReadOnlySpan<byte> json, string source = "adapter_config.json")
    {
        // JsonDocument checks a string's UTF-8 only when it is read, and then throws InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw new InvalidModelFileException($"{source}: not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new InvalidModelFileException($"{source}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
        using (doc) return new LoraConfig(source, doc.RootElement);
    }

    /// <summary>
    /// PEFT's <c>check_target_module_exists</c> for a Linear named <paramref name="name"/> (in the adapter's key layout):
    /// not excluded, not in <c>modules_to_save</c>, and selected by <c>target_modules</c>.
    /// <paramref name="isOutputLayer"/> marks the LM head, which <c>all-linear</c> leaves out.
    /// </summary>
    public bool Targets(string name, bool isOutputLayer)
    {
        if (_exclude != null && _exclude.Matches(name, isOutputLayer)) return false;
        foreach (var r in _saveRegexes) if (r.IsMatch(name)) return false;
        return _targets.Matches(name, isOutputLayer);
    }

    /// <summary>The rank of module <paramref name="name"/>: the first matching <c>rank_pattern</c> key, else <c>r</c>.</summary>
    public int RankOf(string name)
    {
        for (int i = 0; i < _rankRegexes.Length; i++) if (_rankRegexes[i].IsMatch(name)) return RankPattern[i].Value;
        return R;
    }

    /// <summary>The alpha of module <paramref name="name"/>: the first matching <c>alpha_pattern</c> key, else <c>lora_alpha</c>.</summary>
    public double AlphaOf(string name)
    {
        for (int i = 0; i < _alphaRegexes.Length; i++) if (_alphaRegexes[i].IsMatch(name)) return AlphaPattern[i].Value;
        return LoraAlpha;
    }

    /// <summary>PEFT's scaling of module <paramref name="name"/>: alpha / r, or alpha / √r with <c>use_rslora</c>.</summary>
    public double ScaleOf(string name)
    {
        double r = RankOf(name), alpha = AlphaOf(name);
        return UseRslora ? alpha / Math.Sqrt(r) : alpha / r;
    }

    /// <summary>Fields that change the maths: (name, what plain LoRA has). A field absent or null is fine.</summary>
    static readonly (string Field, JsonValueKind Allowed, string Expected)[] Unsupported =
    [
        ("use_dora", JsonValueKind.False, "false (DoRA is not supported)"),
        ("fan_in_fan_out", JsonValueKind.False, "false (Conv1D-style transposed weights are not supported)"),
        ("lora_bias", JsonValueKind.False, "false (LoRA bias terms are not supported)"),
        ("use_qalora", JsonValueKind.False, "false (QA-LoRA is not supported)"),
        ("layers_to_transform", JsonValueKind.Null, "null (per-layer selection is not supported)"),
        ("layers_pattern", JsonValueKind.Null, "null (per-layer selection is not supported)"),
        ("layer_replication", JsonValueKind.Null, "null (layer replication is not supported)"),
        ("alora_invocation_tokens", JsonValueKind.Null, "null (activated LoRA is not supported)"),
        ("trainable_token_indices", JsonValueKind.Null, "null (trainable tokens are not supported)"),
        ("target_parameters", JsonValueKind.Null, "null (LoRA on parameters is not supported)"),
    ];

    void RejectUnsupported(JsonElement root)
    {
        if (root.TryGetProperty("peft_type", out var t) && !(t.ValueKind == JsonValueKind.String && t.GetString() == "LORA"))
            throw Bad($"'peft_type' is {Show(t)}, expected \"LORA\"");
        foreach (var (field, allowed, expected) in Unsupported)
        {
            if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null || v.ValueKind == allowed) continue;
            if (v.ValueKind is JsonValueKind.Array && v.GetArrayLength() == 0) continue;
            throw Bad($"'{field}' is {Show(v)}, expected {expected}");
        }
        if (root.TryGetProperty("bias", out var bias) && bias.ValueKind != JsonValueKind.Null
            && !(bias.ValueKind == JsonValueKind.String && bias.GetString() == "none"))
            throw Bad($"'bias' is {Show(bias)}, expected \"none\" (trained biases are not supported)");
    }

    /// <summary>get_pattern_key: <c>re.match(r"(.*\.)?(" + key + r")$", name)</c>.</summary>
    Regex PatternKeyRegex(string key, string field) => Compile(@"\A(?:.*\.)?(?:" + key + @")\z", field, key);

    Regex Compile(string regex, string field, string what) => ModuleSelector.Compile(regex, Source, field, what);

    List<KeyValuePair<string, T>> Pattern<T>(JsonElement root, string field, Func<JsonElement, string, T> value)
    {
        var list = new List<KeyValuePair<string, T>>();
        if (!root.TryGetProperty(field, out var p) || p.ValueKind == JsonValueKind.Null) return list;
        if (p.ValueKind != JsonValueKind.Object) throw Bad($"'{field}' is {Show(p)}, expected an object of module pattern → value");
        foreach (var e in p.EnumerateObject()) list.Add(new(e.Name, value(e.Value, e.Name)));
        return list;
    }

    List<string> StringList(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) throw Bad($"'{field}' is {Show(v)}, expected a list of module names or null");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad($"'{field}' holds {Show(e)}, expected strings")).ToList();
    }

    int PositiveInt(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var v)) throw Bad($"missing '{field}'");
        return PositiveIntValue(v, field);
    }

    int PositiveIntValue(JsonElement v, string field) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n > 0 ? n : throw Bad($"'{field}' is {Show(v)}, expected a positive integer");

    double Number(JsonElement v, string field) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) ? d : throw Bad($"'{field}' is {Show(v)}, expected a finite number");

    bool Bool(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad($"'{field}' is {Show(v)}, expected true or false"),
        };
    }

    static string Show(JsonElement v) => JsonValueText.Show(v, 80);

    InvalidModelFileException Bad(string what) => new($"{Source}: {what}");

    /// <summary><c>target_modules</c> / <c>exclude_modules</c>: a regex (full match), a list (exact name or ".entry" suffix), or "all-linear".</summary>
    sealed class ModuleSelector
    {
        readonly Regex? _regex;
        readonly HashSet<string>? _names;
        readonly bool _allLinear;

        ModuleSelector(Regex? regex, HashSet<string>? names, bool allLinear) { _regex = regex; _names = names; _allLinear = allLinear; }

        public static ModuleSelector? Parse(JsonElement root, string field, string source)
        {
            if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.String)
            {
                string s = v.GetString()!;
                return s == AllLinear ? new(null, null, true) : new(Compile(@"\A(?:" + s + @")\z", source, field, s), null, false);
            }
            if (v.ValueKind != JsonValueKind.Array)
                throw new InvalidModelFileException($"{source}: '{field}' is {Show(v)}, expected a list of module names or a regular expression");
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) throw new InvalidModelFileException($"{source}: '{field}' holds {Show(e)}, expected strings");
                names.Add(e.GetString()!);
            }
            return new(null, names, false);
        }

        public bool Matches(string name, bool isOutputLayer)
        {
            if (_allLinear) return !isOutputLayer;
            if (_regex != null) return _regex.IsMatch(name);
            if (_names!.Contains(name)) return true;
            foreach (var n in _names) if (name.Length > n.Length && name.EndsWith(n, StringComparison.Ordinal) && name[^(n.Length + 1)] == '.') return true;
            return false;
        }

        /// <summary>Compiles a pattern from the config; linear-time matching, since the pattern comes from a file.</summary>
        public static Regex Compile(string regex, string source, string field, string what)
        {
            try { return new Regex(regex, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant); }
            catch (Exception e) when (e is ArgumentException or NotSupportedException)
            {
                throw new InvalidModelFileException($"{source}: '{field}' entry '{what}' is not a usable regular expression ({e.Message.ReplaceLineEndings(" ")})");
            }
        }
    }
}
