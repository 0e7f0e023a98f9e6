package vn.hcmc.citydata.dss;

import eu.europa.esig.dss.enumerations.Indication;
import eu.europa.esig.dss.enumerations.SignatureLevel;
import eu.europa.esig.dss.enumerations.SubIndication;
import eu.europa.esig.dss.jaxb.object.Message;
import eu.europa.esig.dss.model.DSSDocument;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.service.crl.OnlineCRLSource;
import eu.europa.esig.dss.service.http.commons.CommonsDataLoader;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.spi.DSSUtils;
import eu.europa.esig.dss.spi.client.http.DataLoader;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.spi.x509.CommonTrustedCertificateSource;
import eu.europa.esig.dss.validation.SignedDocumentValidator;
import eu.europa.esig.dss.validation.reports.Reports;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.StringJoiner;

/**
 * Validates signed files with EU DSS: the given root certificate is the only trust anchor, CRLs
 * are fetched online from the URLs in the certificates (loopback addresses only), no OCSP, no
 * AIA, the default ETSI validation policy. One JSON object per file on stdout, one line each.
 *
 * <pre>
 *   java -jar dss-validator.jar --trust root.pem signed.pdf detached.p7s=content.bin ...
 *   java -jar dss-validator.jar --stdin      # lines "root.pem TAB signed [TAB content]"
 * </pre>
 *
 * With --stdin the JVM stays up and answers each line as it comes (one JVM for a test session).
 * --detailed DIR also writes each file's DSS detailed report (XML) there, for humans.
 */
public final class DssValidator {

    private static final Set<String> LOOPBACK = Set.of("127.0.0.1", "localhost", "[::1]", "::1");

    private DssValidator() {
    }

    public static void main(String[] args) throws Exception {
        Locale.setDefault(Locale.ENGLISH); // message texts in the reports
        String trust = null;
        Path detailedDir = null;
        boolean stdin = false;
        List<String> files = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--trust" -> trust = args[++i];
                case "--detailed" -> detailedDir = Path.of(args[++i]);
                case "--stdin" -> stdin = true;
                default -> files.add(args[i]);
            }
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (stdin) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (line.isBlank()) {
                    continue;
                }
                String[] parts = line.split("\t");
                out.println(validateSafely(parts[0], parts[1], parts.length > 2 ? parts[2] : null, detailedDir));
            }
            return;
        }
        if (trust == null || files.isEmpty()) {
            System.err.println("usage: --trust ROOT.pem FILE[=DETACHED_CONTENT]... | --stdin");
            System.exit(2);
        }
        for (String spec : files) {
            int eq = spec.indexOf('=');
            String signed = eq < 0 ? spec : spec.substring(0, eq);
            String content = eq < 0 ? null : spec.substring(eq + 1);
            out.println(validateSafely(trust, signed, content, detailedDir));
        }
    }

    private static String validateSafely(String trust, String signed, String content, Path detailedDir) {
        long started = System.nanoTime();
        try {
            return validate(trust, signed, content, detailedDir, started);
        } catch (Exception e) {
            // One bad file must not end a batch: report it as a result of its own.
            return "{\"file\":" + json(signed) + ",\"error\":" + json(e.getClass().getSimpleName() + ": "
                    + e.getMessage()) + ",\"millis\":" + elapsedMillis(started) + "}";
        }
    }

    private static String validate(String trust, String signed, String content, Path detailedDir, long started)
            throws Exception {
        CommonTrustedCertificateSource anchors = new CommonTrustedCertificateSource();
        anchors.addCertificate(DSSUtils.loadCertificate(new File(trust)));

        LoopbackDataLoader loader = new LoopbackDataLoader(new CommonsDataLoader());
        CommonCertificateVerifier verifier = new CommonCertificateVerifier();
        verifier.setTrustedCertSources(anchors);
        verifier.setCrlSource(new OnlineCRLSource(loader));
        verifier.setOcspSource(null);
        verifier.setAIASource(null); // the chain must come from the signature itself

        SignedDocumentValidator validator = SignedDocumentValidator.fromDocument(new FileDocument(signed));
        validator.setCertificateVerifier(verifier);
        validator.setLocale(Locale.ENGLISH);
        if (content != null) {
            List<DSSDocument> detached = List.of(new FileDocument(content));
            validator.setDetachedContents(detached);
        }
        Reports reports = validator.validateDocument();
        if (detailedDir != null) {
            Files.createDirectories(detailedDir);
            String name = Path.of(signed).getFileName() + ".detailed.xml";
            Files.writeString(detailedDir.resolve(name), reports.getXmlDetailedReport());
        }
        return render(signed, reports.getSimpleReport(), loader.fetched(), elapsedMillis(started));
    }

    private static String render(String file, SimpleReport report, List<String> fetched, long millis) {
        StringJoiner signatures = new StringJoiner(",", "[", "]");
        for (String id : report.getSignatureIdList()) {
            signatures.add(renderSignature(id, report));
        }
        String first = report.getFirstSignatureId();
        StringBuilder json = new StringBuilder("{\"file\":").append(json(file));
        json.append(",\"signatures_count\":").append(report.getSignaturesCount());
        if (first != null) {
            // The first signature's verdict at the top level: most files carry exactly one.
            String inner = renderSignature(first, report);
            json.append(',').append(inner, 1, inner.length() - 1);
        }
        json.append(",\"signatures\":").append(signatures);
        json.append(",\"crl_urls_fetched\":").append(jsonList(fetched));
        json.append(",\"millis\":").append(millis).append('}');
        return json.toString();
    }

    private static String renderSignature(String id, SimpleReport report) {
        Indication indication = report.getIndication(id);
        SubIndication sub = report.getSubIndication(id);
        SignatureLevel format = report.getSignatureFormat(id);
        return "{\"id\":" + json(id)
                + ",\"indication\":" + json(indication == null ? null : indication.name())
                + ",\"sub_indication\":" + json(sub == null ? null : sub.name())
                + ",\"signature_format\":" + json(format == null ? null : format.name().replace('_', '-'))
                + ",\"signed_by\":" + json(report.getSignedBy(id))
                + ",\"errors\":" + jsonMessages(report.getAdESValidationErrors(id))
                + ",\"warnings\":" + jsonMessages(report.getAdESValidationWarnings(id)) + "}";
    }

    private static long elapsedMillis(long started) {
        return (System.nanoTime() - started) / 1_000_000;
    }

    private static String jsonMessages(List<Message> messages) {
        StringJoiner list = new StringJoiner(",", "[", "]");
        for (Message message : messages == null ? List.<Message>of() : messages) {
            list.add("{\"key\":" + json(message.getKey()) + ",\"text\":" + json(message.getValue()) + "}");
        }
        return list.toString();
    }

    private static String jsonList(List<String> values) {
        StringJoiner list = new StringJoiner(",", "[", "]");
        values.forEach(v -> list.add(json(v)));
        return list.toString();
    }

    static String json(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /** Fetches only from loopback addresses (the test's signing service) and remembers what it fetched. */
    static final class LoopbackDataLoader implements DataLoader {
        private static final long serialVersionUID = 1L;
        private final DataLoader delegate;
        private final List<String> fetched = Collections.synchronizedList(new ArrayList<>());

        LoopbackDataLoader(DataLoader delegate) {
            this.delegate = delegate;
        }

        List<String> fetched() {
            return List.copyOf(fetched);
        }

        @Override
        public byte[] get(String url) {
            check(url);
            byte[] data = delegate.get(url);
            fetched.add(url);
            return data;
        }

        @Override
        public DataAndUrl get(List<String> urls) {
            for (String url : urls) {
                if (isLoopback(url)) {
                    return new DataAndUrl(url, get(url));
                }
            }
            throw new IllegalArgumentException("no loopback URL among " + urls);
        }

        @Override
        public byte[] post(String url, byte[] content) {
            check(url);
            return delegate.post(url, content);
        }

        @Override
        public void setContentType(String contentType) {
            delegate.setContentType(contentType);
        }

        private static void check(String url) {
            if (!isLoopback(url)) {
                throw new IllegalArgumentException("refusing to fetch a non-loopback URL: " + url);
            }
        }

        private static boolean isLoopback(String url) {
            try {
                String host = URI.create(url).getHost();
                return host != null && LOOPBACK.contains(host);
            } catch (IllegalArgumentException e) {
                return false;
            }
        }
    }
}
