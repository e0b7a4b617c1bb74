using PureVlm.Formats;
using System.Text.Json;

namespace PureVlm.Tokenization;

/// <summary>
/// Reads <c>added_tokens.json</c>, the object of token → id that LLaMA-family checkpoints keep beside
/// <c>tokenizer.model</c> for tokens the .model lacks (llava-hf/llava-1.5-7b-hf: <c>{"&lt;image&gt;": 32000, "&lt;pad&gt;": 32001}</c>).
/// The ids must continue the .model's vocabulary: together they are exactly its size, size + 1, … in any key order.
/// </summary>
static class AddedTokensJsonReader
{
    /// <summary>The file's name beside a <c>tokenizer.model</c>.</summary>
    public const string FileName = "added_tokens.json";

    /// <summary>
    /// The tokens of <paramref name="file"/> in id order, the first being id <paramref name="pieces"/>.Length;
    /// <paramref name="pieces"/> and <paramref name="pieceToId"/> are the vocabulary of <paramref name="modelFile"/>.
    /// </summary>
    public static string[] Read(string file, string modelFile, string[] pieces, IReadOnlyDictionary<string, int> pieceToId)
    {
        string model = Path.GetFileName(modelFile);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(file)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidTokenizerException($"{file}: cannot read added tokens: {e.Message}", e);
        }
        catch (JsonException e) { throw new InvalidTokenizerException($"{file}: invalid JSON: {e.Message}", e); }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidTokenizerException($"{file}: the top level is a {root.ValueKind}, expected an object of token → id");
            var tokens = new List<(string Token, int Id)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                string token = Vocabulary.Quote(p.Name);
                if (p.Name.Length == 0) throw new InvalidTokenizerException($"{file}: token \"\" is empty, expected a string to cut out of the text");
                // JsonDocument keeps both values of a repeated key; which one HF would use is not worth guessing.
                if (!seen.Add(p.Name)) throw new InvalidTokenizerException($"{file}: token {token} appears twice, expected each token once");
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                    throw new InvalidTokenizerException($"{file}: token {token} has {JsonValueText.Show(p.Value)}, expected a non-negative integer id");
                if (pieceToId.TryGetValue(p.Name, out int existing))
                    throw new InvalidTokenizerException($"{file}: token {token} is already piece {existing} of {model}, expected only tokens {model} lacks");
                tokens.Add((p.Name, id));
            }
            tokens.Sort((a, b) => a.Id.CompareTo(b.Id));
            for (int i = 0; i < tokens.Count; i++)
            {
                var (token, id) = tokens[i];
                int expected = pieces.Length + i;
                if (i > 0 && id == tokens[i - 1].Id)
                    throw new InvalidTokenizerException($"{file}: tokens {Vocabulary.Quote(tokens[i - 1].Token)} and {Vocabulary.Quote(token)} both have id {id}, expected one id each");
                if (id < pieces.Length)
                    throw new InvalidTokenizerException($"{file}: token {Vocabulary.Quote(token)} has id {id}, which is {Vocabulary.Quote(pieces[id])} in {model}; expected ids from {pieces.Length} on");
                if (id != expected)
                    throw new InvalidTokenizerException($"{file}: token {Vocabulary.Quote(token)} has id {id}, expected {expected} (ids must continue the {pieces.Length} pieces of {model} without gaps)");
            }
            return tokens.ConvertAll(t => t.Token).ToArray();
        }
    }
}
