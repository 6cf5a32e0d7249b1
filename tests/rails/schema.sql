-- The Rails app's tables, as its migrations create them on MySQL/MariaDB (see
-- docs/contract.md §1). The service only reads these; the stand-in
-- Sidekiq worker (worker.rb) writes them. Rails owns the real schema, so this file
-- mirrors what `rails db:schema:load` would produce: BIGINT auto-increment ids,
-- t.references columns with their own index and a fk_rails_<sha> foreign key,
-- utf8mb4 everywhere, and NOT NULL timestamps without defaults (Rails fills them in).
--
-- Idempotent: safe to load again into a database that already has the tables.
-- Holds no CREATE DATABASE / USE: the caller chooses the database (scripts/create-db).

CREATE TABLE IF NOT EXISTS `chat_applications` (
  `id` BIGINT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(255) DEFAULT NULL,
  `token` VARCHAR(255) NOT NULL,
  `chats_count` INT NOT NULL DEFAULT 0,
  `created_at` DATETIME(6) NOT NULL,
  `updated_at` DATETIME(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `index_chat_applications_on_token` (`token`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `chats` (
  `id` BIGINT NOT NULL AUTO_INCREMENT,
  `chat_application_id` BIGINT NOT NULL,
  `number` INT NOT NULL,
  `messages_count` INT NOT NULL DEFAULT 0,
  `created_at` DATETIME(6) NOT NULL,
  `updated_at` DATETIME(6) NOT NULL,
  PRIMARY KEY (`id`),
  -- The worker relies on this to make a duplicate chat number raise (and be retried).
  UNIQUE KEY `index_chats_on_chat_application_id_and_number` (`chat_application_id`, `number`),
  KEY `index_chats_on_chat_application_id` (`chat_application_id`),
  CONSTRAINT `fk_rails_7cfe0dfcb4` FOREIGN KEY (`chat_application_id`) REFERENCES `chat_applications` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `messages` (
  `id` BIGINT NOT NULL AUTO_INCREMENT,
  `chat_id` BIGINT NOT NULL,
  `number` INT NOT NULL,
  -- TEXT: at most 65,535 bytes; a longer body fails the insert (strict mode), so the job fails.
  `body` TEXT NOT NULL,
  `created_at` DATETIME(6) NOT NULL,
  `updated_at` DATETIME(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `index_messages_on_chat_id_and_number` (`chat_id`, `number`),
  KEY `index_messages_on_chat_id` (`chat_id`),
  CONSTRAINT `fk_rails_0f670de7ba` FOREIGN KEY (`chat_id`) REFERENCES `chats` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
