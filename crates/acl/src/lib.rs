#[cfg(test)]
mod experiment {
    #[test]
    fn show() {
        for t in [
            "key_prefix \"foo/\" { policy = \"read\" }",
            "key_prefix \"foo/\" { policy = \"read\" }\nkey_prefix \"bar/\" { policy = \"write\" }",
            "key_prefix \"\" { policy = \"read\" policy = \"write\" }",
            "acl = \"read\"\nacl = \"write\"",
            "key_prefix \"a\" { policy = \"read\" }\nkey_prefix \"a\" { policy = \"write\" }",
            "Key_Prefix \"a\" { Policy = \"read\" }",
            "service \"a\" { policy = \"read\" }\nservice \"b\" { policy = \"write\" intentions = \"deny\" }\nservice \"c\" { policy = \"read\" }",
            "key_prefix = { \"a\" = { policy = \"read\" } }",
            "policy = 1",
            "",
            "   \n# c\n",
            "{\"key\": {\"a\": {\"policy\": \"read\"}}}",
        ] {
            println!("{t:?} => {:?}", proconsul_config::parse_hcl(t));
        }
    }
}
