using System.IO.Compression;
using PureVlm.Tokenization;
using Xunit;

namespace PureVlm.Tests.Tokenizer;

public class TokenizerLimitsTests
{
    [Fact]
    public void Gzip_bomb_is_refused_with_a_clear_error_instead_of_exhausting_memory()
    {
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-bomb-{Guid.NewGuid():N}.json.gz");
        try
        {
            using (var file = File.Create(path))
            using (var gz = new GZipStream(file, CompressionLevel.SmallestSize))
            {
                var zeros = new byte[1 << 20];
                for (int i = 0; i < 300; i++) gz.Write(zeros); // 300 MB of zeros: a few hundred KB compressed
            }
            var e = Assert.Throws<InvalidTokenizerException>(() => SentencePieceTokenizer.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("256 MB", e.Message);
        }
        finally { File.Delete(path); }
    }
}
