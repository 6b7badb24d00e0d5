// Stands in, for the sinks/access tests only, for the parts of two modules
// the Elastic integ-test-zip ships without and that a secured node needs:
//
//   - analysis-common: the .security index's "email" analyzer uses the
//     pattern_capture and unique token filters and the uax_url_email
//     tokenizer. Without them the native realm cannot create its index: no
//     native users, so no user metadata. Wired to Lucene's own classes.
//   - lang-mustache: document-level security renders role query templates
//     with it. This engine renders only what crowsnest's role templates use,
//     {{#toJson}}path{{/toJson}} (serialized with Elasticsearch's own
//     XContent, as lang-mustache does) and {{path}}, and refuses any other
//     tag, so a template it cannot render fails loudly instead of matching
//     the wrong documents.
//
// Compiled by the tests against the distribution's own jars.
package dev.crowsnest.missingmodules;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.common.Strings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.ScriptPlugin;
import org.elasticsearch.script.ScriptContext;
import org.elasticsearch.script.ScriptEngine;
import org.elasticsearch.script.TemplateScript;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentFactory;

public final class MissingModulesPlugin extends Plugin implements AnalysisPlugin, ScriptPlugin {
    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "pattern_capture", AnalysisPlugin.requiresAnalysisSettings((indexSettings, env, name, settings) -> {
                boolean preserve = settings.getAsBoolean("preserve_original", true);
                Pattern[] patterns = settings.getAsList("patterns").stream().map(Pattern::compile).toArray(Pattern[]::new);
                return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserve, patterns));
            }),
            "unique", (indexSettings, env, name, settings) -> filter(name, RemoveDuplicatesTokenFilter::new)
        );
    }

    private static TokenFilterFactory filter(String name, java.util.function.UnaryOperator<TokenStream> f) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream in) {
                return f.apply(in);
            }
        };
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new));
    }

    @Override
    public ScriptEngine getScriptEngine(Settings settings, Collection<ScriptContext<?>> contexts) {
        return new MustacheSubset();
    }

    private static final class MustacheSubset implements ScriptEngine {
        private static final Pattern TAG = Pattern.compile("\\{\\{#toJson\\}\\}([A-Za-z0-9_.]+)\\{\\{/toJson\\}\\}|\\{\\{([A-Za-z0-9_.]+)\\}\\}");

        @Override
        public String getType() {
            return "mustache";
        }

        @Override
        public <T> T compile(String name, String code, ScriptContext<T> context, Map<String, String> options) {
            if (context.factoryClazz != TemplateScript.Factory.class) {
                throw new IllegalArgumentException("mustache stand-in: context [" + context.name + "] not supported");
            }
            String rest = TAG.matcher(code).replaceAll("");
            if (rest.contains("{{")) {
                throw new IllegalArgumentException("mustache stand-in: unsupported tag in [" + code + "]");
            }
            TemplateScript.Factory factory = params -> new TemplateScript(params) {
                @Override
                public String execute() {
                    Matcher m = TAG.matcher(code);
                    StringBuilder out = new StringBuilder();
                    while (m.find()) {
                        Object v = resolve(getParams(), m.group(1) != null ? m.group(1) : m.group(2));
                        String s = m.group(1) != null ? toJson(v) : (v == null ? "" : v.toString());
                        m.appendReplacement(out, Matcher.quoteReplacement(s));
                    }
                    m.appendTail(out);
                    return out.toString();
                }
            };
            return context.factoryClazz.cast(factory);
        }

        private static Object resolve(Map<String, Object> params, String path) {
            Object v = params;
            for (String part : path.split("\\.")) {
                if (!(v instanceof Map<?, ?> m)) {
                    return null;
                }
                v = m.get(part);
            }
            return v;
        }

        private static String toJson(Object v) {
            try (XContentBuilder b = XContentFactory.jsonBuilder()) {
                b.value(v);
                return Strings.toString(b);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public Set<ScriptContext<?>> getSupportedContexts() {
            return Set.of(TemplateScript.CONTEXT);
        }
    }
}
